"""OI-H (tasks.md 2.6): what is the user looking at, with the other visible objects as distractors?"""
from __future__ import annotations

from streamgaze.plugins.api import Draft, PresentParams, TaskLogic, present_candidates

TASK_ID = "present_object_identification_hard"


class GazedAmongVisible(TaskLogic):
    Params = PresentParams

    def candidates(self, video, params):
        return present_candidates(video, params)

    def audit_candidates(self, video, params):
        # A released question may be about any gaze of an object, not only its longest.
        return present_candidates(video, params.model_copy(update={"present_one_per_object": False}))

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        return Draft(
            answer=e.gazed,
            pool=e.outside,
            exclude=e.fov_set,
            evidence={"episode": e.id, "object": e.gazed, "background_objects": sorted(e.outside)},
        )

    def release_fields(self, question, store):
        return {"object": question["evidence"]["object"]}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"gazed_among_visible": GazedAmongVisible()}
