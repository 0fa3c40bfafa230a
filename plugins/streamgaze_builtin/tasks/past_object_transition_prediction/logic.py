"""OTP (tasks.md 2.2): which object does the user gaze at next after looking at a group?"""
from __future__ import annotations

from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic, mmss, names

TASK_ID = "past_object_transition_prediction"


class NextObjectAfterGroup(TaskLogic):
    context_fields = frozenset({"group"})

    def candidates(self, video, params):
        usable = video.usable
        for before, after in zip(usable, usable[1:]):
            yield Candidate(f"{before.id}>{after.id}", episode=after, data={"group_episode": before.id})

    def build(self, cand, past, params, rng, *, video):
        group_ep, answer_ep = past.episode(cand.data["group_episode"]), cand.episode
        answer = answer_ep.gazed
        if names.conflicts_any(answer, group_ep.group):
            return Skip("answer_in_group")
        usable = past.usable
        upto = usable.index(group_ep)
        # What the user looked at next after this same object before: also a valid answer.
        earlier_next = {b.gazed for a, b in zip(usable[:upto], usable[1 : upto + 1]) if a.gazed == group_ep.gazed}
        exclude = group_ep.fov_set | answer_ep.fov_set | earlier_next
        return Draft(
            answer=answer,
            pool=past.seen_names,
            exclude=exclude,
            context={"group": ", ".join(group_ep.group)},
            evidence={
                "group_episode": group_ep.id,
                "answer_episode": answer_ep.id,
                "group": list(group_ep.group),
                "excluded": sorted(exclude),
            },
        )

    def release_fields(self, question, store):
        ev, vid = question["evidence"], question["video_id"]
        g0, g1 = store.episode(vid, ev["group_episode"])
        a0, _ = store.episode(vid, ev["answer_episode"])
        return {"object_group": list(ev["group"]), "object_group_timestamp": f"({mmss(g0)}, {mmss(g1)})",
                "answer_object": question["answer_text"], "answer_timestamp": mmss(a0)}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"next_object_after_group": NextObjectAfterGroup()}
