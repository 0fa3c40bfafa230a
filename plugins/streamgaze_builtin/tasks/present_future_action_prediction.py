"""FAP (tasks.md 2.8): from the recent fixation pattern, which action will the user do next?"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamgaze import hookimpl
from streamgaze.engine import Candidate, Draft, Skip, TaskLogic, names
from streamgaze.engine.timeline import ms
from streamgaze_builtin import spec_path

TASK_ID = "present_future_action_prediction"
KIND = "label"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fap_min_actions: int = Field(2, ge=1, description="a video needs at least this many actions")
    fap_min_labels: int = Field(4, ge=1, description="... and this many distinct label keys")
    fap_lookback: int = Field(3, ge=1, description="usable episodes looked back over, up to the asked one")
    fap_max_context: int = Field(3, ge=1, description="context objects kept (the last ones)")
    present_window_s: float = Field(60.0, gt=0, description="the spec's clip length; context episodes start inside it")
    fap_min_gap_s: float = Field(3.0, ge=0)
    fap_max_gap_s: float = Field(60.0, gt=0)
    fap_drop_leaky_context: bool = True
    fap_leak_min_letters: int = Field(4, ge=1, description="context words this long may not be words of the answer")
    fap_reword: bool = Field(False, description="LLM rewording of labels (no rewording helper ships yet)")

    @model_validator(mode="after")
    def _check(self):
        if self.fap_min_gap_s > self.fap_max_gap_s:
            raise ValueError("fap_min_gap_s must not exceed fap_max_gap_s")
        if self.fap_reword:
            raise ValueError("fap_reword needs an LLM rewording helper, and none is available; set it to false")
        return self


def _assess(e, view, video, params, used: frozenset[str]):
    """Every rule of FAP for the question at t_end(e): a Skip, or what the question rests on.

    ``view`` is H(t); ``video`` is read only for the future exception of tasks.md 1.1 (actions after t).
    """
    labels = {names.key(a.label, KIND) for a in video.actions}
    if len(video.actions) < params.fap_min_actions or len(labels) < params.fap_min_labels:
        return Skip("few_actions")
    time_s = e.t_end
    clip_start = ms(max(0.0, time_s - params.present_window_s))
    upto = [u for u in view.usable if u.t_start <= e.t_start]
    context_eps = [u for u in upto[-params.fap_lookback :] if u.t_start >= clip_start]
    objects: list[str] = []
    for u in context_eps:
        if u.gazed not in objects:
            objects.append(u.gazed)
    objects = objects[-params.fap_max_context :]
    if all(names.in_list(o, "fixture") for o in objects):
        return Skip("generic_context")
    context = " → ".join(objects)
    if context in used:
        return Skip("duplicate_context")
    later = sorted(
        (a for a in video.actions if a.t_start > time_s), key=lambda a: (a.t_start, a.t_end, names.key(a.label, KIND))
    )
    if not later:
        return Skip("no_next_action")
    action = later[0]
    gap = ms(action.t_start - time_s)
    if gap < params.fap_min_gap_s:
        return Skip("next_action_too_soon")
    if gap > params.fap_max_gap_s:
        return Skip("next_action_too_far")
    if params.fap_drop_leaky_context:
        label_words = set(names.key(action.label, KIND).split(" "))
        words = {w for o in objects for w in o.split(" ") if len(w) >= params.fap_leak_min_letters}
        if words & label_words:
            return Skip("context_leak")
    return {"episodes": context_eps, "objects": objects, "context": context, "action": action, "gap": gap}


class NextAction(TaskLogic):
    Params = Params
    context_fields = frozenset({"context"})

    def candidates(self, video, params):
        # A context is "used" once an earlier candidate of the video passed every rule of the task with it
        # (each check reads only H(t_end) and the video's actions, as `build` does).
        used: list[str] = []
        for e in video.usable:
            yield Candidate(e.id, episode=e, data={"used_contexts": tuple(used)})
            found = _assess(e, video.before(e.t_end), video, params, frozenset(used))
            if isinstance(found, dict):
                used.append(found["context"])

    def build(self, cand, past, params, rng, *, video):
        found = _assess(cand.episode, past, video, params, frozenset(cand.data["used_contexts"]))
        if isinstance(found, Skip):
            return found
        time_s, horizon = cand.episode.t_end, cand.episode.t_end + params.fap_max_gap_s
        action = found["action"]
        # X: the answer and every action under way, imminent or plausibly next: its span meets [t, t + max gap].
        exclude = sorted({a.label for a in video.actions if a.t_start <= horizon and a.t_end >= time_s})
        return Draft(
            answer=action.label,
            pool=[a.label for a in video.actions],
            exclude=exclude,
            kind=KIND,
            context={"context": found["context"]},
            evidence={
                "context_episodes": [u.id for u in found["episodes"]],
                "context_objects": list(found["objects"]),
                "action": {"t_start": action.t_start, "t_end": action.t_end, "label": action.label},
                "gap_s": found["gap"],
            },
        )


@hookimpl
def streamgaze_task_specs():
    return [spec_path(TASK_ID)]


@hookimpl
def streamgaze_answer_logic():
    return {"next_action": NextAction()}
