"""SR (tasks.md 2.4): while the user gazed at a group, which background object was NOT visible?"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic

TASK_ID = "past_scene_recall"


class SrParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sr_min_background: int = Field(3, ge=1, description="D, the background seen at every gaze on the object, needs this many names")


class MissingBackgroundObject(TaskLogic):
    Params = SrParams
    context_fields = frozenset({"group"})

    def candidates(self, video, params):
        for e in video.usable:
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        # R: every gaze on the same object so far (e included); usually just e.
        recalled = [r for r in past.usable if r.gazed == e.gazed]
        recalled_ids = {r.id for r in recalled}
        background = frozenset.intersection(*(r.out_set for r in recalled))  # D
        if len(background) < params.sr_min_background:
            return Skip("too_few_background")
        others = [o for o in past.episodes if o.id not in recalled_ids]
        seen_then = frozenset().union(*(r.seen_set for r in recalled))
        answers = frozenset().union(*(o.out_set for o in others)) - seen_then  # A
        if not answers:
            return Skip("no_answer")
        return Draft(
            answer_pool=sorted(answers),
            pool=background,
            exclude=answers,
            context={"group": ", ".join(e.group)},
            evidence=lambda answer: {
                "episode": e.id,
                "gazed_objects": list(e.group),
                "background_objects": sorted(e.outside),
                "answer_seen_in": [o.id for o in others if answer in o.out_set],
            },
        )

    def release_fields(self, question, store):
        ev = question["evidence"]
        return {"gazed_objects": list(ev["gazed_objects"]), "answer_object": question["answer_text"],
                "background_objects": list(ev["background_objects"])}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"missing_background_object": MissingBackgroundObject()}
