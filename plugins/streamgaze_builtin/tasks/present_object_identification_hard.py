"""OI-H (tasks.md 2.6): what is the user looking at, with the other visible objects as distractors?"""
from __future__ import annotations

from streamgaze import hookimpl
from streamgaze.engine import Candidate, Draft, TaskLogic, longest_gaze_per_name
from streamgaze_builtin import spec_path

TASK_ID = "present_object_identification_hard"


class GazedAmongVisible(TaskLogic):
    def candidates(self, video, params):
        for e in longest_gaze_per_name(video):
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        return Draft(
            answer=e.gazed,
            pool=e.outside,
            exclude=e.fov_set,
            evidence={"episode": e.id, "object": e.gazed, "background_objects": sorted(e.outside)},
        )


@hookimpl
def streamgaze_task_specs():
    return [spec_path(TASK_ID)]


@hookimpl
def streamgaze_answer_logic():
    return {"gazed_among_visible": GazedAmongVisible()}
