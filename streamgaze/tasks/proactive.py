"""Test points and ground truth shared by the proactive alert tasks (tasks.md 2.9, 2.10)."""
from __future__ import annotations

from typing import Iterator

from pydantic import BaseModel, ConfigDict, Field

from streamgaze.tasks import names
from streamgaze.tasks.api import Candidate
from streamgaze.tasks.timeline import Episode, ms


class ProactiveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proactive_poll_s: float = Field(10.0, gt=0, description="W: the polling interval and the answer window")
    proactive_lead_s: float = Field(1.0, ge=0, description="points sit this far after the onset (new)")
    proactive_offsets: list[int] = Field(default_factory=lambda: [-2, -1, 0, 1, 2])
    proactive_max_after_s: float = Field(300.0, gt=0, description="the horizon after the question time")


def alert_candidates(video, targets) -> Iterator[Candidate]:
    """Alert questions are all asked when the video's first usable episode starts; one candidate per target."""
    first = video.usable[0]
    for target in sorted(targets):
        yield Candidate(target, episode=first, data={"target": target})


def fixture_or_vague(name: str) -> bool:
    """Fixtures and vague names are never alert targets (tasks.md 1.5)."""
    return names.in_list(name, "fixture") or names.in_list(name, "vague")


def expected_at(t: float, events: list[tuple[float, float]], window_s: float) -> str:
    """"yes" iff some event [s, e] meets the window (t - W, t]: it happened since the previous poll."""
    return "yes" if any(s <= t and e > t - window_s for s, e in events) else "no"


def test_points(
    onset: Episode, events: list[tuple[float, float]], time_s: float, duration_s: float, p: ProactiveParams
) -> list[dict]:
    """Points t_k = o + lead + k*W inside [time_s, min(time_s + horizon, duration)], each with its truth."""
    lead = min(p.proactive_lead_s, onset.duration)
    last = min(time_s + p.proactive_max_after_s, duration_s)
    points = []
    for k in p.proactive_offsets:
        t = ms(onset.t_start + lead + k * p.proactive_poll_s)
        if time_s <= t <= last:
            points.append({"t_s": t, "expected": expected_at(t, events, p.proactive_poll_s)})
    return points


def video_end(video) -> float:
    """The latest possible test point: the video's duration, or its last episode's end when it is unknown."""
    return video.duration_s or video.episodes[-1].t_end


def alert_points(video, onset: Episode, events: list[tuple[float, float]], time_s: float, p: ProactiveParams) -> list[dict]:
    """`test_points` of an alert task on a whole video (the horizon ends at `video_end`)."""
    return test_points(onset, events, time_s, video_end(video), p)
