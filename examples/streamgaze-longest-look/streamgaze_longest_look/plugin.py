"""Which object did the user look at longest before now? Answer logic and hooks of the example task.

Total gaze time per name = the summed durations of the usable episodes that gaze it, in H(time_s). The answer
must beat the runner-up by ``min_margin_s`` (else the question has no clear answer); distractors are other gazed
names. The engine does timing, the causal cut, drawing, lettering, dedup, caps and output.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic, hookimpl, ms

HERE = Path(__file__).parent


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_gazed: int = Field(4, ge=2, description="distinct gazed names by the question time")
    min_margin_s: float = Field(0.5, ge=0, description="lead of the longest total over the runner-up")


class LongestLook(TaskLogic):
    Params = Params
    context_fields = frozenset()  # the template uses only `options`

    def candidates(self, video, params):
        for e in video.usable:  # one candidate per usable episode, asked at its end
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        totals: dict[str, float] = {}
        for e in past.usable:  # `past` is H(time_s): nothing after the question
            totals[e.gazed] = ms(totals.get(e.gazed, 0.0) + e.duration)
        if len(totals) < params.min_gazed:
            return Skip("too_few_gazed")
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
        (answer, best), (_, second) = ranked[0], ranked[1]
        if best - second < params.min_margin_s:
            return Skip("no_clear_longest")
        return Draft(
            answer=answer,
            pool=[name for name, _ in ranked[1:]],
            evidence={"episode": cand.episode.id, "totals_s": dict(sorted(totals.items()))},
        )


@hookimpl
def streamgaze_task_specs():
    return [HERE / "past_longest_look.yaml"]


@hookimpl
def streamgaze_answer_logic():
    return {"longest_look": LongestLook()}


@hookimpl
def streamgaze_suites():
    return [HERE / "longest_look.yaml"]
