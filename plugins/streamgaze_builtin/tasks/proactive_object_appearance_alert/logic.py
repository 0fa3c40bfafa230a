"""OAA (tasks.md 2.10): alert when a target first appears in view; polled at test points for Yes/No."""
from __future__ import annotations

from streamgaze.plugins.api import (
    Draft,
    ProactiveParams,
    Skip,
    TaskLogic,
    alert_candidates,
    alert_points,
    fixture_or_vague,
    released_intervals,
)

TASK_ID = "proactive_object_appearance_alert"


class ObjectAppearanceAlert(TaskLogic):
    Params = ProactiveParams
    context_fields = frozenset({"target"})

    def candidates(self, video, params):
        return alert_candidates(video, video.seen_names)

    def build(self, cand, past, params, rng, *, video):
        target, time_s = cand.data["target"], past.cut_s
        # Events are in the future by definition (the exception of tasks.md 1.1): any episode, any role.
        appearances = [e for e in video.episodes if target in e.seen_set]
        onset = appearances[0]
        if onset.t_start <= time_s:
            return Skip("visible_at_question")
        if target not in onset.out_set:
            return Skip("first_seen_in_fov")
        if fixture_or_vague(target):
            return Skip("fixture_or_vague")
        # An onset past the horizon leaves only "no" points: the engine skips that as one_sided_points.
        events = [(e.t_start, e.t_end) for e in appearances]
        return Draft(
            test_points=alert_points(video, onset, events, time_s, params),
            context={"target": target},
            evidence={
                "target": target,
                "onset_s": onset.t_start,
                "first_episode": onset.id,
                "event_intervals": [list(ev) for ev in events],
            },
        )

    def release_fields(self, question, store):
        return {"appearance_intervals": released_intervals(question),
                "difficulty": "hard", "gaze_area": "Outside"}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"object_appearance_alert": ObjectAppearanceAlert()}
