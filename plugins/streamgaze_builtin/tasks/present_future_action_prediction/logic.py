"""FAP (tasks.md 2.8): from the recent fixation pattern, which action will the user do next?

Optional rewording (``fap_reword: true``, off by default): an OpenAI-compatible model turns each action label
into a short sentence (greedy, cached per raw label by `streamgaze.llm.cache`). The options are drawn from the raw
labels exactly as without rewording (same draws, same letters); only the shown texts change. If two reworded
options conflict (`names.conflict`, kind "label"), look alike (the near-duplicate validator's pair test), a
reworded distractor conflicts with a reworded member of X, or a rewording is empty or too long, the question
keeps the cleaned labels.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from pydantic import ConfigDict, Field, model_validator

from streamgaze.plugins.api import (
    OPTION_COUNT,
    Action,
    Candidate,
    Draft,
    LLMStep,
    Skip,
    TaskLogic,
    draw_distractors,
    llm_step_params,
    mmss,
    ms,
    names,
)
from streamgaze_builtin.validators import NearDuplicateOptions

TASK_ID = "present_future_action_prediction"
KIND = "label"

#: The optional rewording step: the switch ``fap_reword`` and its ``fap_reword_*`` settings (model, endpoint, key,
#: cache; `streamgaze.tasks.llm_step`), left out of the dumped params (and so of the generation report) while it
#: is off, so default output stays byte-identical. The key is never dumped.
REWORD = LLMStep("fap_reword", prefix="fap_reword", help="reword labels into short sentences with an LLM (tasks.md 2.8)")

REWORD_SYSTEM = (
    "You rewrite short action labels from first-person (egocentric) videos as answer options of a quiz. "
    "Reply with one short sentence in the imperative mood, at most {max_words} words, that keeps the label's "
    "meaning exactly and adds no new objects or details. Reply with the sentence only."
)


class Params(llm_step_params(REWORD)):
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
    fap_reword_max_words: int = Field(12, ge=1, description="a longer rewording counts as failed")

    @model_validator(mode="after")
    def _check(self):
        if self.fap_min_gap_s > self.fap_max_gap_s:
            raise ValueError("fap_min_gap_s must not exceed fap_max_gap_s")
        return self


def reworder(params: Params):
    """The cached LLM of these params (one per process and setting)."""
    return REWORD.client(params)


def reword(label: str, params: Params) -> str | None:
    """The short sentence for one raw label, or None when the model's answer is unusable."""
    system = REWORD_SYSTEM.format(max_words=params.fap_reword_max_words)
    text = reworder(params).complete(label, system=system)
    lines = [ln.strip().strip("\"'`").strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not names.clean(lines[0]):
        return None
    sentence = " ".join(lines[0].split())
    return sentence if len(sentence.split(" ")) <= params.fap_reword_max_words else None


def _reworded_options(answer: str, distractors: list[str], exclude: list[str], params: Params):
    """Sentences for the answer, the distractors and X, or None when the question must keep its labels."""
    raw = [answer, *distractors]
    texts = {}
    for label in sorted({*raw, *exclude}):  # a fixed order of requests
        texts[label] = reword(label, params)
        if texts[label] is None:
            return None
    options = [texts[r] for r in raw]
    near = NearDuplicateOptions()
    for i, a in enumerate(options):
        for b in options[i + 1 :]:
            if names.conflict(a, b, KIND) or near.pair(a, b):
                return None
    excluded = names.ConflictSet([texts[x] for x in exclude], KIND)
    if any(excluded.conflicts(texts[d]) for d in distractors):
        return None
    return texts


class _VideoFacts(NamedTuple):
    """What every candidate of a video reads, made once per video (`_facts`) instead of once per candidate."""

    n_labels: int  # distinct label keys
    by_start: tuple[Action, ...]  # actions in next-action order: (t_start, t_end, label key)
    starts: list[float]  # their t_start, for bisecting: the first with t_start > t is the next action
    labels: tuple[str, ...]  # every action's label, in the video's order (the distractor pool)
    usable_counts: list[int]  # usable episodes among the first n episodes, for every n


def _facts(video) -> _VideoFacts:
    def make() -> _VideoFacts:
        by_start = tuple(sorted(video.actions, key=lambda a: (a.t_start, a.t_end, names.key(a.label, KIND))))
        counts = [0]
        for e in video.episodes:
            counts.append(counts[-1] + e.usable)
        return _VideoFacts(
            n_labels=len({names.key(a.label, KIND) for a in video.actions}),
            by_start=by_start,
            starts=[a.t_start for a in by_start],
            labels=tuple(a.label for a in video.actions),
            usable_counts=counts,
        )

    return video.memo((TASK_ID, "facts"), make)


def _usable(view, video, facts: _VideoFacts) -> tuple:
    """``view.usable``, sliced from the video's: a view's episodes are a prefix of its video's."""
    if not view.is_cut_of(video):
        return view.usable
    return video.usable[: facts.usable_counts[len(view.episodes)]]


def _start(item) -> float:
    return item.t_start


def _assess(e, view, video, params, used: frozenset[str]):
    """Every rule of FAP for the question at t_end(e): a Skip, or what the question rests on.

    ``view`` is H(t); ``video`` is read only for the future exception of tasks.md 1.1 (actions after t).
    """
    facts = _facts(video)
    if len(video.actions) < params.fap_min_actions or facts.n_labels < params.fap_min_labels:
        return Skip("few_actions")
    time_s = e.t_end
    clip_start = ms(max(0.0, time_s - params.present_window_s))
    usable = _usable(view, video, facts)
    upto = bisect_right(usable, e.t_start, key=_start)  # usable episodes are in start order
    lookback = usable[max(0, upto - params.fap_lookback) : upto]
    context_eps = [u for u in lookback if u.t_start >= clip_start]
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
    first_later = bisect_right(facts.starts, time_s)
    if first_later == len(facts.by_start):
        return Skip("no_next_action")
    action = facts.by_start[first_later]
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
        # The assessment is kept with the view it read, so `build` given that same view (the engine's) reuses it.
        used: list[str] = []
        for e in video.usable:
            view = video.before(e.t_end)
            found = _assess(e, view, video, params, frozenset(used))
            yield Candidate(e.id, episode=e, data={"used_contexts": tuple(used), "assessed": (view, found)})
            if isinstance(found, dict):
                used.append(found["context"])

    def build(self, cand, past, params, rng, *, video):
        view, found = cand.data.get("assessed", (None, None))
        if view is not past:
            found = _assess(cand.episode, past, video, params, frozenset(cand.data["used_contexts"]))
        if isinstance(found, Skip):
            return found
        time_s, horizon = cand.episode.t_end, cand.episode.t_end + params.fap_max_gap_s
        action = found["action"]
        # X: the answer and every action under way, imminent or plausibly next: its span meets [t, t + max gap].
        facts = _facts(video)
        began = facts.by_start[: bisect_right(facts.starts, horizon)]
        exclude = sorted({a.label for a in began if a.t_end >= time_s})
        pool = list(facts.labels)
        evidence = {
            "context_episodes": [u.id for u in found["episodes"]],
            "context_objects": list(found["objects"]),
            "action": {"t_start": action.t_start, "t_end": action.t_end, "label": action.label},
            "gap_s": found["gap"],
        }
        common = dict(kind=KIND, context={"context": found["context"]})
        if not params.fap_reword:
            return Draft(answer=action.label, pool=pool, exclude=exclude, evidence=evidence, **common)
        # The engine's own draw, made here so the reworded question has the same options and letters.
        distractors = draw_distractors(rng, action.label, exclude, pool, (), KIND)
        if len(distractors) < OPTION_COUNT - 1:
            return Skip("too_few_distractors")
        texts = _reworded_options(action.label, distractors, exclude, params)
        evidence["reworded"] = texts is not None
        if texts is None:
            return Draft(answer=action.label, distractors=distractors, exclude=exclude, evidence=evidence, **common)
        evidence["option_labels"] = {names.clean(texts[r]): r for r in sorted([action.label, *distractors])}
        return Draft(
            answer=texts[action.label],
            distractors=[texts[d] for d in distractors],
            exclude=[texts[x] for x in exclude],
            evidence=evidence,
            **common,
        )

    def release_fields(self, question, store):
        """Each context object at the first context episode that gazed it (else the last), as the reference."""
        ev, vid = question["evidence"], question["video_id"]
        timing = []
        for o in ev["context_objects"]:
            eid = next((e for e in ev["context_episodes"] if o in store.gazed(vid, e)), ev["context_episodes"][-1])
            timing.append({"object": o, "timestamp": mmss(store.episode(vid, eid)[0])})
        return {"answer_action": question["answer_text"], "context_objects": list(ev["context_objects"]),
                "context_objects_with_timing": timing, "actual_action_time": mmss(ev["action"]["t_start"])}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"next_action": NextAction()}
