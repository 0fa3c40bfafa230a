"""NFI (tasks.md 2.1): among four objects, which one was seen in the background but never gazed at?"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic, names

TASK_ID = "past_non_fixated_object_identification"


class NfiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nfi_min_gazed: int = Field(3, ge=1, description="at least this many names gazed by the question time")


class NeverGazedObject(TaskLogic):
    Params = NfiParams

    def candidates(self, video, params):
        for e in video.usable:
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        gazed = past.gazed_names  # Gazed<=t: usable episodes only
        if len(gazed) < params.nfi_min_gazed:
            return Skip("too_few_gazed")
        # Seen in the background, never in a FOV; a name only ever peripheral (fov) is neither answer nor distractor.
        never_in_fov = past.out_names - past.fov_names
        if not never_in_fov:
            return Skip("no_answer")

        def evidence(answer, distractors):
            first_gaze = {}
            for e in past.usable:
                first_gaze.setdefault(e.gazed, e.id)
            return {
                "episode": cand.episode.id,
                "answer_seen_in": [e.id for e in past.episodes if answer in e.out_set],
                "distractors_gazed_in": {d: first_gaze[names.key(d)] for d in names.sorted_by_key(distractors)},
            }

        return Draft(answer_pool=sorted(never_in_fov), pool=gazed, exclude=never_in_fov, evidence=evidence)

    def release_fields(self, question, store):
        return {"answer_object": question["answer_text"]}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"never_gazed_object": NeverGazedObject()}
