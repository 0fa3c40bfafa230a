"""The task engine: what every task shares (tasks.md section 1).

A task's answer logic (`TaskLogic`, provided by a plugin) lists candidates and, for each, returns a `Skip`
or a `Draft` (answer or answer pool, distractor pool, exclusion set X, template context, evidence). The engine
does the rest: time placement and clips, the causal cut, normalisation, seeded drawing, lettering, dedup,
caps, skip counts, ids and output (`streamgaze.tasks.generate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from streamgaze.tasks.names import Kind
from streamgaze.tasks.timeline import Action, AttributeRow, Episode, Timeline, ms

#: Option letters, in order; a question has `OPTION_COUNT` options unless its task builds them itself.
LETTERS = "ABCDEFGH"
OPTION_COUNT = 4


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Candidate:
    """A possible question: ``key`` identifies it within (task, video) and seeds its draws.

    ``episode`` is the decisive episode the engine places the question time by (the spec's ``ask_at``);
    ``data`` carries whatever else the logic needs in `TaskLogic.build`.
    """

    key: str
    episode: Episode | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """The candidate does not become a question; ``reason`` is a short snake_case code."""

    reason: str


@dataclass
class Draft:
    """What a task decides for one candidate; the engine draws, letters and renders the rest.

    Either ``answer`` is fixed or the engine draws it from ``answer_pool``. Distractors are drawn from
    ``pool`` (then ``fallback``) minus everything that conflicts with X = answer + ``exclude``, unless the task
    built them itself (``distractors``, e.g. GSM's sequences). Proactive tasks give ``test_points`` instead.
    ``evidence`` may be a function of the drawn answer.
    """

    answer: str | None = None
    answer_pool: Sequence[str] = ()
    pool: Iterable[str] = ()
    fallback: Iterable[str] = ()
    exclude: Iterable[str] = ()
    distractors: Sequence[str] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] | Callable[[str], Mapping[str, Any]] = field(default_factory=dict)
    test_points: Sequence[Mapping[str, Any]] | None = None
    kind: Kind | None = None


class TaskLogic:
    """Answer logic of one task. Subclass it, set ``Params`` and ``context_fields``, implement both methods.

    ``candidates`` sees the whole timeline, to *list* candidates in time order (never to decide answers).
    ``build`` gets ``past``, the view cut at the question time; ``video`` (the whole timeline) is only for
    exclusions and the future-facing parts a task's rules name (FAP's next action, alert test points).
    ``screen`` (optional) rejects a candidate by what it holds itself, before anything is drawn or built.
    """

    Params: type[BaseModel] = NoParams
    context_fields: frozenset[str] = frozenset()

    def candidates(self, video: Timeline, params: BaseModel) -> Iterable[Candidate]:
        raise NotImplementedError

    def screen(self, cand: Candidate, video: Timeline, params: BaseModel) -> Skip | None:
        """A cheap check of the candidate's own episodes, with no draws: a `Skip`, or None to go on. The
        ``select_candidates`` cap policy picks among the candidates that pass it, so only those picked are built."""
        return None

    def build(
        self, cand: Candidate, past: Timeline, params: BaseModel, rng: np.random.Generator, *, video: Timeline
    ) -> Draft | Skip:
        raise NotImplementedError

    def audit_candidates(self, video: Timeline, params: BaseModel) -> Iterable[Candidate]:
        """The candidates a released question may have come from (``streamgaze audit questions``): `candidates`
        by default. A task whose parameters thin its candidates out (one per object, ...) lists them all here."""
        return self.candidates(video, params)

    def audit_build(
        self, cand: Candidate, past: Timeline, params: BaseModel, rng: np.random.Generator, *, video: Timeline,
        released: Mapping[str, Any],
    ) -> Draft | Skip:
        """The draft a released question (its JSON, ``released``) is checked against: `build` by default. A task
        whose build draws something the released question states (OAR's attribute) builds for what it states; a
        `Skip` here means the metadata cannot settle the question (reported as unverifiable, with its reason)."""
        return self.build(cand, past, params, rng, video=video)

    def release_fields(self, question: Mapping[str, Any], store: Any) -> dict[str, Any]:
        """The task's own fields in the released StreamGaze JSON (``export streamgaze-json``), beside the common
        ones the exporter writes; ``store`` (`streamgaze.tasks.export.ReleaseStore`) gives episode times and gazed
        names. Times are "MM:SS" (`streamgaze.tasks.export.mmss`). None by default."""
        return {}


class PresentParams(BaseModel):
    """The parameter of the present-task pool shared by OI-E, OI-H and OAR (tasks.md 2.5)."""

    model_config = ConfigDict(extra="forbid")
    present_one_per_object: bool = True


def present_candidates(video: Timeline, params: PresentParams) -> Iterable[Candidate]:
    """One candidate per gazed name (its longest gaze), or every usable episode when not one per object."""
    episodes = longest_gaze_per_name(video) if params.present_one_per_object else video.usable
    for e in episodes:
        yield Candidate(e.id, episode=e)


def longest_gaze_per_name(video: Timeline) -> list[Episode]:
    """The present-task pool (tasks.md 2.5): per gazed name, the usable episode where it is gazed longest
    (ties: the earliest), in time order."""
    best: dict[str, Episode] = {}
    for e in video.usable:
        cur = best.get(e.gazed)
        if cur is None or e.duration > cur.duration:
            best[e.gazed] = e
    return sorted(best.values(), key=lambda e: (e.t_start, e.t_end, e.id))


__all__ = [
    "LETTERS", "OPTION_COUNT", "Action", "AttributeRow", "Candidate", "Draft", "Episode", "NoParams", "Skip", "TaskLogic", "Timeline",
    "longest_gaze_per_name", "ms", "PresentParams", "present_candidates",
]
