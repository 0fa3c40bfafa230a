"""GTA (tasks.md 2.9): alert when the user gazes at a target; polled at test points for Yes/No."""
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

TASK_ID = "proactive_gaze_triggered_alert"


class GazeTriggeredAlert(TaskLogic):
    Params = ProactiveParams
    context_fields = frozenset({"target"})

    def candidates(self, video, params):
        return alert_candidates(video, video.gazed_names)

    def build(self, cand, past, params, rng, *, video):
        target, time_s = cand.data["target"], past.cut_s
        # The events are in the future by definition (the exception of tasks.md 1.1): read from `video`.
        gazes = [e for e in video.usable if e.gazed == target]
        if gazes[0].t_start <= time_s:
            return Skip("gazed_at_question")
        if fixture_or_vague(target):
            return Skip("fixture_or_vague")
        onset = gazes[0]
        if onset.t_start > time_s + params.proactive_max_after_s:
            return Skip("no_onset")
        events = [(e.t_start, e.t_end) for e in gazes]
        points, dropped = [], []
        window = params.proactive_poll_s
        for p in alert_points(video, onset, events, time_s, params):
            near = any(target in e.fov and e.t_start <= p["t_s"] and e.t_end > p["t_s"] - window for e in video.episodes)
            if p["expected"] == "no" and near:
                dropped.append({"t_s": p["t_s"], "reason": "target_in_fov"})
            else:
                points.append(p)
        return Draft(
            test_points=points,
            context={"target": target},
            evidence={
                "target": target,
                "onset_s": onset.t_start,
                "event_intervals": [list(ev) for ev in events],
                "dropped_points": dropped,
            },
        )

    def release_fields(self, question, store):
        return {"fixation_intervals": released_intervals(question),
                "difficulty": "easy", "gaze_area": "FOV"}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"gaze_triggered_alert": GazeTriggeredAlert()}
