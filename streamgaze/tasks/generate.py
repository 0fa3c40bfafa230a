"""From task specs and a store to question files: the part of every task the engine owns.

For each task and video (in id order) and each candidate (in time order): place the question in time, cut
the causal view, let the task's logic decide, then draw (answer, distractors, option order) from the
candidate's own generator, letter, render, dedup, cap, count skips. Output is byte-identical across runs.
"""
from __future__ import annotations

import gc
import inspect
import json
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from streamgaze.errors import PluginError, StreamGazeError
from streamgaze.progress import stage
from streamgaze.tasks.templates import render
from streamgaze.tasks.api import Candidate, Draft, Skip
from streamgaze.tasks import names
from streamgaze.tasks.rng import CandidateRngs, LazyRng, candidate_rng, choice
from streamgaze.tasks.timeline import Timeline, TimelineRows, ms

OPTION_COUNT = 4
LETTERS = "ABCDEFGH"


@dataclass
class TaskResult:
    """One task's questions over a store. Each question is kept as its JSON line (what the file and ``qa_items``
    hold) and its store row; `items` parses the lines on first use, so worker processes send plain strings."""

    task_id: str
    family: str
    skips: Counter = field(default_factory=Counter)  # (video_id, reason) -> n
    params: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)  # `question_row` per question
    _parsed: list[dict] | None = field(default=None, repr=False, compare=False)

    @property
    def items(self) -> list[dict]:
        """The questions as dicts (read-only: edit through `drop`)."""
        if self._parsed is None or len(self._parsed) != len(self.lines):
            self._parsed = [json.loads(line) for line in self.lines]
        return self._parsed

    def add(self, questions: list[tuple[str, tuple]]) -> None:
        """Append ``(line, row)`` pairs, as a video's run makes them (`_run_video`)."""
        for line, row in questions:
            self.lines.append(line)
            self.rows.append(row)

    def drop(self, ids: set[str], reason: str) -> None:
        """Leave out the questions with these ids, counted under ``reason``."""
        kept = [(line, row) for line, row in zip(self.lines, self.rows) if row[0] not in ids]
        for row in self.rows:
            if row[0] in ids:
                self.skips[(row[1], reason)] += 1
        self.lines, self.rows, self._parsed = [line for line, _ in kept], [row for _, row in kept], None

    def skip_totals(self) -> dict[str, int]:
        totals: Counter = Counter()
        for (_video, reason), n in self.skips.items():
            totals[reason] += n
        return dict(sorted(totals.items()))


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
    from itertools import combinations

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


class _Dedup:
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


def run_task_on_video(task, video: Timeline, seed: int, validators: list = ()) -> tuple[list[dict], Counter]:
    """All questions of one task on one video, and the skip counts by reason."""
    candidates, skips = _listed_candidates(task, video, seed)
    rngs = CandidateRngs(seed, video.video_id, [(task.spec.id, cand.key) for cand in candidates])
    return _questions(task, video, seed, candidates, skips, validators, rngs)


def _listed_candidates(task, video: Timeline, seed: int) -> tuple[list[Candidate], Counter]:
    """The task's candidates on the video that pass its screen (and the select cap), and the skips so far."""
    skips: Counter = Counter()
    if not video.usable:
        return [], skips
    try:
        candidates = list(task.logic.candidates(video, task.params))
    except StreamGazeError:
        raise
    except Exception as exc:
        raise PluginError(task.source.plugin, f"task {task.spec.id} candidates (video {video.video_id})", exc) from exc
    return _screened(task, video, candidates, seed, skips), skips


def _questions(task, video: Timeline, seed: int, candidates: list[Candidate], skips: Counter, validators,
               rngs: CandidateRngs) -> tuple[list[dict], Counter]:
    """Build, draw, validate, dedup and cap the listed candidates: the questions kept, and all skip counts."""
    spec, logic, params = task.spec, task.logic, task.params
    built: list[DrawnQuestion] = []
    dedup = _Dedup()
    for cand in candidates:
        time_s = ms(question_time(task, cand, video))
        rng = LazyRng(partial(rngs.generator, spec.id, cand.key))
        past = video.before(time_s)
        try:
            result = logic.build(cand, past, params, rng, video=video)
            if isinstance(result, Draft):
                result = draw(task, video, cand, result, rng, time_s)
        except StreamGazeError:
            raise
        except Exception as exc:
            raise PluginError(task.source.plugin, f"task {spec.id} (video {video.video_id}, candidate {cand.key})", exc) from exc
        if isinstance(result, Skip):
            skips[result.reason] += 1
            continue
        verdict = _validators_verdict(validators, result)
        if verdict:
            skips[verdict] += 1
        elif dedup.is_duplicate(result):
            skips["duplicate"] += 1
        else:
            built.append(result)
    kept = built
    cap = spec.max_per_video
    if cap is not None and len(built) > cap:  # select_candidates never builds more than the cap
        if spec.cap_policy == "select":
            keep_idx = sorted(
                int(i) for i in candidate_rng(seed, video.video_id, spec.id, "select").choice(len(built), cap, replace=False)
            )
            kept = [built[i] for i in keep_idx]
        else:
            kept = built[:cap]
        skips["cap"] += len(built) - cap
    return [_whole_line(q) for q in kept], skips


def _validators_verdict(validators, question: DrawnQuestion) -> str | None:
    """The first drop reason of the validators, in order. A validator whose ``reads`` avoids the on-demand
    fields sees `DrawnQuestion.fields`, so a question that is then capped needs no text or evidence."""
    fields = None
    for validator in validators:
        reads = getattr(validator, "reads", None)
        if reads is not None and ON_DEMAND_FIELDS.isdisjoint(reads):
            fields = fields if fields is not None else question.fields()
            verdict = validator(fields)
        else:
            verdict = validator(_whole_line(question))
        if verdict:
            return verdict
    return None


def _whole_line(question: DrawnQuestion) -> dict:
    """`DrawnQuestion.item`, a task's failure in its evidence reported as the plugin's."""
    try:
        return question.item()
    except StreamGazeError:
        raise
    except Exception as exc:
        task = question.task
        where = f"task {task.spec.id} (video {question.video_id}, candidate {question.key})"
        raise PluginError(task.source.plugin, where, exc) from exc


def _screened(task, video: Timeline, candidates: list[Candidate], seed: int, skips: Counter) -> list[Candidate]:
    """The candidates that pass the logic's screen (the rest counted by reason); under ``select_candidates``
    only the ``max_per_video`` the select generator picks among them, in time order (the rest count as cap)."""
    spec, logic = task.spec, task.logic
    passed = []
    for cand in candidates:
        try:
            verdict = logic.screen(cand, video, task.params)
        except StreamGazeError:
            raise
        except Exception as exc:
            raise PluginError(task.source.plugin, f"task {spec.id} screen (video {video.video_id}, candidate {cand.key})", exc) from exc
        if verdict is None:
            passed.append(cand)
        else:
            skips[verdict.reason] += 1
    cap = spec.max_per_video
    if spec.cap_policy != "select_candidates" or cap is None or len(passed) <= cap:
        return passed
    skips["cap"] += len(passed) - cap
    picked = candidate_rng(seed, video.video_id, spec.id, "select").choice(len(passed), cap, replace=False)
    return [passed[i] for i in sorted(int(i) for i in picked)]


def generate(store, tasks, seed: int = 0) -> list[TaskResult]:
    """Run every task over every video of the store; returns the results in task id order.

    Videos are independent, so large stores are spread over worker processes (``STREAMGAZE_WORKERS``, default
    the CPUs available); results are gathered in video order, so the output does not depend on the split.
    """
    rows = TimelineRows(store)
    results = [TaskResult(task.id, task.spec.family, params=_resolved_params(task)) for task in tasks]
    with _collector_for_generation(), stage("generate", total=max(len(rows.video_ids), 1)) as advance:
        for video_id, per_task in zip(rows.video_ids, _per_video(tasks, rows, seed)):
            for result, (questions, skips) in zip(results, per_task):
                result.add(questions)
                for reason, n in skips.items():
                    result.skips[(video_id, reason)] += n
            advance(1)
    return results


YOUNG_GC_THRESHOLD = 20_000  # tracked allocations between young collections while generating (Python's default: 700)


@contextmanager
def _collector_for_generation():
    """Python's cyclic garbage collector, tuned while generating (restored after), where it cost ~15 % of the run.

    Each video's run allocates thousands of objects that live until the video is done (its timeline, views and
    their caches), and freeing them leaves no cycles (`Timeline.drop_views`); at the default threshold they set
    off collections that each rescan the long-lived objects (the store's rows, the caches). So: freeze what exists
    now (the rows are read-only from here on; a forked worker inherits them frozen) and collect young objects
    more rarely.
    """
    threshold, ours = gc.get_threshold(), gc.get_freeze_count() == 0  # unfreeze only what this froze
    if ours:
        gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if ours:
            gc.unfreeze()


_JOB: dict = {}  # what forked workers inherit: the tasks, the timeline rows and the seed
PARALLEL_FROM = 16  # videos; below this a process pool costs more than it saves


def _run_video(tasks, rows: TimelineRows, i: int, seed: int) -> list[tuple[list[tuple[str, tuple]], Counter]]:
    video = rows.timeline(i)
    listed = [_listed_candidates(task, video, seed) for task in tasks]
    # Every candidate's generator of the video is seeded in one go (`CandidateRngs`), all tasks' together.
    rngs = CandidateRngs(seed, video.video_id, [(task.spec.id, cand.key) for task, (candidates, _) in zip(tasks, listed)
                                                for cand in candidates])
    out = []
    for task, (candidates, skips) in zip(tasks, listed):
        items, skips = _questions(task, video, seed, candidates, skips, task.validators, rngs)
        out.append(([(dumps(item), question_row(item)) for item in items], skips))
    video.drop_views()  # freed now, not by the cyclic collector (`_collector_for_generation`)
    return out


def question_row(item: dict) -> tuple:
    """What ``qa_items`` and the report need of a question besides its line."""
    return (item["id"], item["video_id"], item["time_s"], item["clip"][0], item["clip"][1], item["question"],
            item["answer"], item["answer_text"])


def _video_job(i: int):
    try:
        return _run_video(_JOB["tasks"], _JOB["rows"], i, _JOB["seed"])
    except StreamGazeError as exc:  # custom exceptions do not unpickle; carry the one-line message
        return StreamGazeError(exc.message)


def _per_video(tasks, rows: TimelineRows, seed: int):
    """Each video's ``[((line, row) per question, skips) per task]``, in video order; each worker builds the
    timelines it runs."""
    n = len(rows.video_ids)
    workers = int(os.environ.get("STREAMGAZE_WORKERS", len(os.sched_getaffinity(0))))
    if workers <= 1 or n < PARALLEL_FROM:
        for i in range(n):
            yield _run_video(tasks, rows, i, seed)
        return
    _JOB.update(tasks=tasks, rows=rows, seed=seed)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for outcome in pool.map(_video_job, range(n), chunksize=4):
                if isinstance(outcome, StreamGazeError):
                    raise outcome
                yield outcome
    finally:
        _JOB.clear()


def _resolved_params(task) -> dict:
    spec = task.spec
    engine = {k: getattr(spec, k) for k in ("ask_at", "max_per_video", "cap_policy", "present_offset_s", "present_window_s")}
    if spec.validators:
        engine["validators"] = list(spec.validators)
    return {**engine, **task.params.model_dump()}


_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=False, separators=(", ", ": "))


def dumps(item: dict) -> str:
    """A question line; one encoder for all, as `json.dumps` would make one per call with these settings."""
    return _LINE_ENCODER.encode(item)


def write_outputs(store, results: list[TaskResult], out_dir: Path, seed: int) -> dict:
    """Question files, the generation report, and qa_items/qa_skips in one transaction."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"seed": seed, "tasks": {}}
    for r in results:
        (out_dir / f"{r.task_id}.jsonl").write_text("".join(line + "\n" for line in r.lines), encoding="utf-8")
        letters = Counter(row[6] for row in r.rows if row[6])
        report["tasks"][r.task_id] = {
            "family": r.family,
            "questions": len(r.lines),
            "skipped": r.skip_totals(),
            "answer_letters": dict(sorted(letters.items())),
            "params": r.params,
        }
    (out_dir / "generation_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rows = [row for r in results for row in r.rows]
    column = lambda k: [row[k] for row in rows]  # noqa: E731
    qa_rows = pa.table({
        "id": column(0), "task": [r.task_id for r in results for _ in r.rows],
        "family": [r.family for r in results for _ in r.rows], "video_id": column(1),
        "time_s": pa.array(column(2), pa.float64()), "clip_start": pa.array(column(3), pa.float64()),
        "clip_end": pa.array(column(4), pa.float64()), "question": column(5), "answer": column(6),
        "answer_text": column(7), "item": [line for r in results for line in r.lines],
    })
    skips = [(r.task_id, v, reason, n) for r in results for (v, reason), n in sorted(r.skips.items())]
    skip_rows = pa.table({"task": [s[0] for s in skips], "video_id": [s[1] for s in skips],
                          "reason": [s[2] for s in skips], "n": pa.array([s[3] for s in skips], pa.int32())})
    with store.transaction() as con:
        con.execute("DELETE FROM qa_items WHERE task IN (SELECT unnest(?))", [[r.task_id for r in results]])
        con.execute("DELETE FROM qa_skips WHERE task IN (SELECT unnest(?))", [[r.task_id for r in results]])
        store.insert("qa_items", qa_rows)
        store.insert("qa_skips", skip_rows)
    return report


def run_generate(store_path, out_dir, only=None, seed: int = 0, extra_specs=None, drop_invalid: bool = False) -> dict:
    """``streamgaze generate``: load specs (fails before touching anything), generate, write. ``drop_invalid``
    leaves out the questions a reviewer marked invalid (store ``reviews``), counted as ``reviewed_invalid``."""
    from streamgaze.tasks.spec import load_task_specs
    from streamgaze.store import open_store

    tasks = load_task_specs(only=only, extra_paths=extra_specs)
    with open_store(store_path, read_only=True) as ro:
        results = generate(ro, tasks, seed=seed)
        if drop_invalid:
            from streamgaze.review.data import invalid_question_ids

            invalid = invalid_question_ids(ro)
            for r in results:
                r.drop(invalid, "reviewed_invalid")
    with open_store(store_path) as store:
        return write_outputs(store, results, Path(out_dir), seed)

