"""OI-E (tasks.md 2.5): what is the user looking at, with objects seen earlier (or never in the video) as distractors?"""
from __future__ import annotations

from pydantic import Field

from streamgaze.plugins.api import Draft, PresentParams, TaskLogic, names, present_candidates

TASK_ID = "present_object_identification_easy"


class Params(PresentParams):
    fallback_list: str = Field("fallback", description="word list (streamgaze/tasks/data) of fallback distractors")


class GazedAmongSeenBefore(TaskLogic):
    Params = Params

    def candidates(self, video, params):
        return present_candidates(video, params)

    def audit_candidates(self, video, params):
        # A released question may be about any gaze of an object, not only its longest.
        return present_candidates(video, params.model_copy(update={"present_one_per_object": False}))

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        # Seen before, not in view now (causal: `past` is H(time_s)).
        primary = sorted(past.seen_names - e.seen_set)
        # Names that occur anywhere in the video are never "easy" fallbacks (exclusions may see the whole video).
        everywhere = names.ConflictSet(video.seen_names)
        fallback = [f for f in names.word_list(params.fallback_list)["entries"] if not everywhere.conflicts(f)]
        primary_keys = frozenset(names.key(p) for p in primary)

        def evidence(answer, distractors):
            sources = {"seen" if names.key(d) in primary_keys else "fallback" for d in distractors}
            return {
                "episode": e.id,
                "object": e.gazed,
                "distractor_source": [s for s in ("seen", "fallback") if s in sources],
            }

        return Draft(answer=e.gazed, pool=primary, fallback=fallback, exclude=e.seen_set, evidence=evidence)

    def release_fields(self, question, store):
        return {"object": question["evidence"]["object"]}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"gazed_among_seen_before": GazedAmongSeenBefore()}
