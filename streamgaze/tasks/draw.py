"""One question from a task's `Draft`: the question time and clip, the seeded draws (answer, distractors, option
order), lettering, rendering and evidence. Everything here is per candidate and pure; the loop over tasks, videos
and candidates, caps, validators, worker processes and output live in `streamgaze.tasks.generate`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterable

import numpy as np

from streamgaze.tasks import names
from streamgaze.tasks.api import LETTERS, OPTION_COUNT, Candidate, Draft, Skip
from streamgaze.tasks.rng import choice
from streamgaze.tasks.templates import render
from streamgaze.tasks.timeline import Timeline, ms


def question_time(task, cand: Candidate, video: Timeline) -> float:
    """tasks.md 1.2: past at the decisive episode's end; present once the user has looked for a moment;
    proactive when the video's first usable episode starts."""
    spec = task.spec
    if spec.ask_at == "first_episode":
        return video.usable[0].t_start
    e = cand.episode
    if spec.ask_at == "episode_end":
        return e.t_end
    return ms(min(e.t_end, e.t_start + spec.present_offset_s))


def clip_for(task, time_s: float) -> list[float]:
    if task.spec.family == "present":
        return [ms(max(0.0, time_s - task.spec.present_window_s)), time_s]
    return [0.0, time_s]


def draw_distractors(
    rng: np.random.Generator, answer: str, exclude: Iterable[str], pool: Iterable[str], fallback: Iterable[str], kind
) -> list[str]:
    """tasks.md 1.4: per part (primary, then fallback) sort by key, drop what conflicts with X, walk a
    permutation, accept what conflicts with no option accepted so far. At most 3."""
    excluded = names.ConflictSet([answer, *exclude], kind)
    chosen: list[str] = []
    for part in (pool, fallback):
        if len(chosen) == OPTION_COUNT - 1:
            break
        candidates = excluded.admissible(part)  # none conflicts with the answer
        if not candidates:
            continue
        for i in rng.permutation(len(candidates)).tolist():
            item = candidates[i]
            for accepted in chosen:
                if names.conflict(item, accepted, kind):
                    break
            else:
                chosen.append(item)
                if len(chosen) == OPTION_COUNT - 1:
                    break
    return chosen


_ASSURED: dict = {}  # the same (answer, X, pools) recur across a video's candidates


def distractors_assured(
    answer: str, exclude: Iterable[str], pool: Iterable[str], fallback: Iterable[str], kind, n: int = OPTION_COUNT - 1
) -> bool:
    """Non-drawing check: True when `draw_distractors` gets ``n`` distractors whatever permutations it draws."""
    exclude, pool, fallback = tuple(exclude), tuple(pool), tuple(fallback)
    memo = (answer, exclude, pool, fallback, kind, n)
    try:
        found = _ASSURED.get(memo)
    except TypeError:  # unhashable items
        return _distractors_assured(answer, exclude, pool, fallback, kind, n)
    if found is None:
        if len(_ASSURED) >= 65536:
            _ASSURED.clear()
        found = _ASSURED[memo] = _distractors_assured(answer, exclude, pool, fallback, kind, n)
    return found


def _distractors_assured(answer, exclude, pool, fallback, kind, n) -> bool:
    """`distractors_assured`, uncached.

    The walk falls short only if it accepts fewer than ``n`` items that block everything else: a maximal
    conflict-free set of the primary part, extended by one of what is left of the fallback. Such sets have
    fewer than ``n`` members, so trying all small subsets is cheap.
    """
    excluded = names.ConflictSet([answer, *exclude], kind)
    parts = [[p for p in names.sorted_by_key(part, kind) if not excluded.conflicts(p)] for part in (pool, fallback)]
    primary, second = parts
    # Quick answer: an accepted item blocks itself and what conflicts with it, so when more items remain than
    # n - 1 accepted ones can block, the walk always reaches n.
    everything = primary + second
    degree = max((sum(names.conflict(a, b, kind) for b in everything) for a in everything), default=0)
    if len(everything) > (n - 1) * degree:
        return True

    def free(items) -> bool:
        return all(not names.conflict(a, b, kind) for i, a in enumerate(items) for b in items[i + 1 :])

    def blocks(chosen, items) -> bool:
        accepted = names.ConflictSet(chosen, kind)
        return all(accepted.conflicts(p) for p in items)

    for k in range(n):
        for sp in combinations(primary, k):
            if not (free(sp) and blocks(sp, primary)):
                continue
            taken = names.ConflictSet(sp, kind)
            rest = [f for f in second if not taken.conflicts(f)]
            for j in range(n - k):
                if any(free(sf) and blocks(sf, rest) for sf in combinations(rest, j)):
                    return False
    return True


def _valid_fixed_distractors(answer: str, distractors: list[str], exclude: Iterable[str], kind) -> bool:
    options = [answer, *distractors]
    if len(distractors) != OPTION_COUNT - 1:
        return False
    for i, a in enumerate(options):
        if any(names.conflict(a, b, kind) for b in options[i + 1 :]):
            return False
    excluded = names.ConflictSet(exclude, kind)
    return not any(excluded.conflicts(d) for d in distractors)


def draw(task, video: Timeline, cand: Candidate, draft: Draft, rng, time_s: float) -> "DrawnQuestion | Skip":
    """Make a task's draft a question: draw and letter its options (or keep its test points), or a skip the
    engine owns. Its text and evidence come later, when needed (`DrawnQuestion`)."""
    spec = task.spec
    if draft.test_points is not None:
        points = [{"t_s": ms(p["t_s"]), "expected": p["expected"]} for p in draft.test_points]
        expected = {p["expected"] for p in points}
        if expected != {"yes", "no"}:
            return Skip("one_sided_points")
        return DrawnQuestion(task, video.video_id, cand.key, time_s, [], "", "", draft, points=points)
    kind = draft.kind or (spec.option_kind if spec.option_kind != "none" else "object")
    answer_raw = draft.answer if draft.answer is not None else choice(rng, draft.answer_pool, kind)
    exclude = list(draft.exclude)
    if draft.distractors is not None:
        distractors = list(draft.distractors)
        if not _valid_fixed_distractors(answer_raw, distractors, exclude, kind):
            return Skip("too_few_distractors")
    else:
        distractors = draw_distractors(rng, answer_raw, exclude, draft.pool, draft.fallback, kind)
        if len(distractors) < OPTION_COUNT - 1:
            return Skip("too_few_distractors")
    order = rng.permutation(OPTION_COUNT).tolist()
    raw = [answer_raw, *distractors]
    options = [names.display(raw[i], kind) for i in order]
    return DrawnQuestion(task, video.video_id, cand.key, time_s, options, LETTERS[order.index(0)],
                         names.display(answer_raw, kind), draft, answer_raw, distractors)


#: The item fields a `DrawnQuestion` makes only on demand; a validator whose ``reads`` (the fields it looks at)
#: avoids them is given the question without them, so no text is rendered for a question that is then capped.
ON_DEMAND_FIELDS = frozenset({"question", "evidence"})


@dataclass(eq=False)
class DrawnQuestion:
    """A question after the draws: options, letter, time (or test points). The text and the evidence are made
    on first need: every kept question needs them, a capped one only if dedup has to compare its text."""

    task: Any
    video_id: str
    key: str
    time_s: float
    options: list[str]
    answer: str
    answer_text: str
    draft: Draft
    answer_raw: str | None = None
    distractors: list[str] | None = None
    points: list[dict] | None = None
    _text: str | None = field(default=None, repr=False)
    _item: dict | None = field(default=None, repr=False)

    def fields(self) -> dict:
        """The question line without the on-demand fields (`ON_DEMAND_FIELDS`)."""
        return self._line(full=False)

    def item(self) -> dict:
        """The whole question line as a dict (made once)."""
        if self._item is None:
            self._item = self._line(full=True)
        return self._item

    @property
    def text(self) -> str:
        if self._text is None:
            context = {**self.draft.context, "options": self.options}
            where = f"video {self.video_id}, t={self.time_s}"
            self._text = render(self.task.template, context, self.task.spec.id, where)
        return self._text

    def _line(self, full: bool) -> dict:
        spec = self.task.spec
        line = {"id": f"{spec.id}/{self.video_id}/{self.key}", "task": spec.id, "family": spec.family,
                "video_id": self.video_id}
        if full:
            line["question"] = self.text
        line.update(options=self.options, answer=self.answer, answer_text=self.answer_text, time_s=self.time_s,
                    clip=clip_for(self.task, self.time_s))
        if full:
            draft = self.draft
            if self.points is not None:
                evidence = draft.evidence
            else:
                evidence = _evidence(draft, self.answer_raw, self.distractors)
            line["evidence"] = _plain(evidence)
        if self.points is not None:
            line["test_points"] = self.points
        return line


class Dedup:
    """tasks.md 1.3: a question whose text and set of option keys equal an earlier one's is a duplicate. Texts
    are compared only between questions with equal option keys, so most questions are told apart unrendered.
    Questions without options (proactive) are never duplicates."""

    def __init__(self):
        self._by_options: dict[tuple[str, ...], list[DrawnQuestion]] = {}

    def is_duplicate(self, question: DrawnQuestion) -> bool:
        if not question.options:
            return False
        option_keys = tuple(sorted(names.key(o, "sequence") for o in question.options))
        earlier = self._by_options.setdefault(option_keys, [])
        if any(e.text == question.text for e in earlier):
            return True
        earlier.append(question)
        return False


def _evidence(draft: Draft, answer_raw: str, distractors: list[str]):
    """Evidence may be a mapping, a function of the drawn answer, or of the answer and the distractors
    (a function taking two positional parameters, e.g. NFI's ``distractors_gazed_in``)."""
    if not callable(draft.evidence):
        return draft.evidence
    if _takes_distractors(draft.evidence):
        return draft.evidence(answer_raw, list(distractors))
    return draft.evidence(answer_raw)


_TAKES_DISTRACTORS: dict = {}  # code object -> bool: a task's evidence closures share one code object


def _takes_distractors(fn) -> bool:
    code = getattr(fn, "__code__", None)
    plain = type(fn).__name__ == "function" and not hasattr(fn, "__wrapped__") and not hasattr(fn, "__signature__")
    if code is not None and plain:
        found = _TAKES_DISTRACTORS.get(code)
        if found is None:
            found = _TAKES_DISTRACTORS[code] = _signature_takes_distractors(fn)
        return found
    return _signature_takes_distractors(fn)


def _signature_takes_distractors(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _plain(value):
    """Evidence as JSON-ready data with a stable order (sets sorted)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is list and all(type(v) is str for v in value):
        return list(value)
    if isinstance(value, dict):
        return {str(k): v if type(v) is str else _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return ms(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
