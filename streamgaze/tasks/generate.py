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
from typing import Callable

import pyarrow as pa

from streamgaze.errors import PluginError, StreamGazeError
from streamgaze.paths import check_outputs, safe_name, write_files
from streamgaze.progress import stage
from streamgaze.shards import Shard, record_shard
from streamgaze.store import Store, open_store
from streamgaze.tasks.api import Candidate, Draft, Skip
from streamgaze.tasks.blind import blind_accuracies
from streamgaze.tasks.draw import ON_DEMAND_FIELDS, Dedup, DrawnQuestion, draw, question_time
from streamgaze.tasks.rng import CandidateRngs, LazyRng, candidate_rng
from streamgaze.tasks.spec import load_task_specs
from streamgaze.tasks.timeline import Episode, Timeline, TimelineRows, ms


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
        for cand in candidates:
            _check_candidate(cand)
    except StreamGazeError:
        raise
    except Exception as exc:
        raise _logic_error(task, f"candidates (video {video.video_id})", exc) from exc
    return _screened(task, video, candidates, seed, skips), skips


def _check_candidate(cand) -> None:
    """A logic's candidate, checked where it enters the engine (not as an AttributeError deep inside it)."""
    if not isinstance(cand, Candidate):
        raise TypeError(f"candidates() yielded {type(cand).__name__}, not a Candidate")
    if cand.episode is not None and not isinstance(cand.episode, Episode):
        raise TypeError(f"candidate {cand.key!r} has episode {cand.episode!r} ({type(cand.episode).__name__}), "
                        "not an Episode of the timeline")


def _logic_error(task, what: str, exc: BaseException) -> PluginError:
    """A failure of a task's logic, naming the task, its plugin and package, and the logic's file."""
    try:
        where = inspect.getsourcefile(type(task.logic)) or "?"
    except TypeError:
        where = "?"
    return PluginError(task.source.plugin, f"task {task.spec.id} ({where}) {what}", exc, source=task.source)


def _questions(task, video: Timeline, seed: int, candidates: list[Candidate], skips: Counter, validators,
               rngs: CandidateRngs) -> tuple[list[dict], Counter]:
    """Build, draw, validate, dedup and cap the listed candidates: the questions kept, and all skip counts."""
    spec, logic, params = task.spec, task.logic, task.params
    built: list[DrawnQuestion] = []
    dedup = Dedup()
    for cand in candidates:
        time_s = ms(question_time(task, cand, video))
        rng = LazyRng(partial(rngs.generator, spec.id, cand.key))
        past = video.before(time_s)
        try:
            result = logic.build(cand, past, params, rng, video=video)
            if isinstance(result, Draft):
                result = draw(task, video, cand, result, rng, time_s)
            elif not isinstance(result, Skip):
                raise TypeError(f"build() returned {type(result).__name__}, not a Draft or a Skip")
        except StreamGazeError:
            raise
        except Exception as exc:
            raise _logic_error(task, f"build (video {video.video_id}, candidate {cand.key})", exc) from exc
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
            if verdict is not None and not isinstance(verdict, Skip):
                raise TypeError(f"screen() returned {type(verdict).__name__}, not a Skip or None")
        except StreamGazeError:
            raise
        except Exception as exc:
            raise _logic_error(task, f"screen (video {video.video_id}, candidate {cand.key})", exc) from exc
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


def generate(store, tasks, seed: int = 0, shard: Shard | None = None) -> list[TaskResult]:
    """Run every task over every video of the store (``shard``'s videos only, when given); returns the results in
    task id order. A video's questions depend on nothing but its own timeline, so a shard's questions are exactly
    the unsharded run's questions of its videos.

    Videos are independent, so large stores are spread over worker processes (``STREAMGAZE_WORKERS``, default
    the CPUs available); results are gathered in video order, so the output does not depend on the split.
    """
    rows = TimelineRows(store)
    if shard is not None:
        rows.keep_videos(shard.holds)
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


REPORT_FILE = "generation_report.json"


def output_names(task_ids) -> list[str]:
    """The files `write_outputs` writes into the output folder: ``<task_id>.jsonl`` and the report."""
    return [_task_file(t) for t in task_ids] + [REPORT_FILE]


def _task_file(task_id: str) -> str:
    name = safe_name(task_id)  # task ids match the spec pattern; guarded anyway, as every name made from data
    return f"{name}.jsonl"


def output_files(results: list[TaskResult], seed: int, shard: Shard | None = None) -> tuple[dict[str, str], dict]:
    """The question files and the generation report (`output_names`) as texts, and the report."""
    report = {"seed": seed, **({"shard": str(shard)} if shard is not None else {}), "tasks": {}}
    files: dict[str, str] = {}
    for r in results:
        files[_task_file(r.task_id)] = "".join(line + "\n" for line in r.lines)
        letters = Counter(row[6] for row in r.rows if row[6])
        report["tasks"][r.task_id] = {
            "family": r.family,
            "questions": len(r.lines),
            "skipped": r.skip_totals(),
            "answer_letters": dict(sorted(letters.items())),
            "blind_baselines": blind_accuracies([json.loads(line) for line in r.lines]),
            "params": r.params,
        }
    files[REPORT_FILE] = json.dumps(report, indent=2) + "\n"
    return files, report


def write_outputs(store, results: list[TaskResult], out_dir: Path, seed: int, shard: Shard | None = None) -> dict:
    """Question files, the generation report, and qa_items/qa_skips in one transaction. Every output path is
    checked before anything is written; the files are written under temporary names, the store transaction
    runs, and only then are the files renamed into place (`streamgaze.paths.write_files`). With ``shard``, the
    store's rows of the shard's videos are replaced and the other videos' rows kept."""
    check_outputs(out_dir, output_names(r.task_id for r in results))
    files, report = output_files(results, seed, shard)
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

    def fill_store() -> None:
        task_ids = [r.task_id for r in results]
        with store.transaction() as con:
            if shard is None:
                con.execute("DELETE FROM qa_items WHERE task IN (SELECT unnest(?))", [task_ids])
                con.execute("DELETE FROM qa_skips WHERE task IN (SELECT unnest(?))", [task_ids])
            else:
                held = con.execute("SELECT DISTINCT video_id FROM qa_items WHERE task IN (SELECT unnest(?)) UNION "
                                   "SELECT DISTINCT video_id FROM qa_skips WHERE task IN (SELECT unnest(?))",
                                   [task_ids, task_ids]).fetchall()
                mine = sorted(v for (v,) in held if v is not None and shard.holds(v))
                for table in ("qa_items", "qa_skips"):
                    con.execute(f"DELETE FROM {table} WHERE task IN (SELECT unnest(?)) AND video_id IN (SELECT unnest(?))",
                                [task_ids, mine])
            record_shard(con, "generate", shard, seed=seed, tasks=task_ids)
            store.insert("qa_items", qa_rows)
            store.insert("qa_skips", skip_rows)

    write_files(out_dir, files, before_rename=fill_store)
    return report


def run_generate(store_path, out_dir, only=None, seed: int = 0, extra_specs=None,
                 drop_invalid: Callable[[Store], set[str]] | None = None, shard: Shard | None = None) -> dict:
    """``streamgaze generate``: load specs (fails before touching anything), generate, write. ``drop_invalid``
    (the review stage's `invalid_question_ids`, passed in by the CLI: generation sits below review) gives the
    questions a reviewer marked invalid; they are left out and counted as ``reviewed_invalid``."""
    broken: dict[str, str] = {}
    tasks = load_task_specs(only=only, extra_paths=extra_specs, on_broken=broken.__setitem__)
    check_outputs(out_dir, output_names(task.id for task in tasks))  # before the (long) generation
    with open_store(store_path, read_only=True) as ro:
        results = generate(ro, tasks, seed=seed, shard=shard)
        if drop_invalid is not None:
            invalid = drop_invalid(ro)
            for r in results:
                r.drop(invalid, "reviewed_invalid")
    with open_store(store_path) as store:
        report = write_outputs(store, results, Path(out_dir), seed, shard=shard)
    return {**report, "broken_tasks": broken} if broken else report
