"""Scoring (tasks.md 3.5): accuracy per task over *every* question of the QA files a run refers to (missing,
unparsed, refused and errored answers count as wrong), proactive tasks as a micro average over test points,
clustered bootstrap 95 % intervals (videos, then questions within them: `streamgaze.eval.stats`) for tasks,
families and the overall mean of task accuracies, and completeness.

`score_run_reference` scores the same run folder with the StreamGaze reference's rules
(`streamgaze.eval.reference_scoring`; ``score --scoring reference``).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError
from streamgaze.eval import reference_scoring as ref
from streamgaze.eval.report import REPORT_FILES, write_report
from streamgaze.eval.stats import BOOTSTRAP, Units, macro_intervals, question_bootstrap_ci, stratified_intervals
from streamgaze.eval.runner import (
    PREDICTIONS,
    RUN,
    STREAM,
    items_of,
    load_questions,
    read_predictions,
    sha256_file,
    stream_state,
)
from streamgaze.paths import check_outputs
from streamgaze.shards import shard_of
from streamgaze.tasks.blind import BLIND_BASELINES, blind_outcomes
from streamgaze.tasks.spec import family_of
from streamgaze.tasks.suites import DEFAULT_SUITE, registered_suites

MAX_LISTED = 20
BLIND_MIN_QUESTIONS = 10  # fewer questions give no interval worth flagging
INTERVALS = ("clustered bootstrap: videos resampled, then questions within each drawn video (a proactive "
             "question with all its test points is one unit)")


def bootstrap_ci(correct: np.ndarray, resamples: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """The per-question interval (questions treated as independent; too narrow when questions share a video).
    Scores use clustered intervals (`streamgaze.eval.stats.clustered_ci`); this stays for comparison."""
    return question_bootstrap_ci(correct, resamples, seed)


def _run_info(run_dir: Path) -> dict:
    path = run_dir / RUN
    if not path.exists():
        raise InputError(run_dir, f"not an eval run folder (no {RUN})")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None


def load_run(run_dir) -> tuple[dict, dict[str, list[dict]], list[str], dict[tuple[str, int], dict]]:
    """A run folder read: ``(run.json, {task: questions}, changed question files, {item key: last row})``.
    Every question file the run recorded gives a task (possibly without questions)."""
    run_dir = Path(run_dir)
    info = _run_info(run_dir)
    files = info.get("question_files") or {}
    qa_dir = _qa_dir(run_dir, info)
    questions: dict[str, list[dict]] = {}
    changed = []
    try:
        shard = shard_of(info.get("shard"))  # a shard's run is scored on its own videos' questions
    except ValueError as exc:
        raise InputError(run_dir / RUN, f"shard: {exc}") from None
    for name, digest in sorted(files.items()):
        path = qa_dir / name
        if not path.exists():
            raise InputError(path, f"question file of run {run_dir} is gone")
        if sha256_file(path) != digest:
            changed.append(name)
        for q in load_questions(path):
            if shard is None or shard.holds(q["video_id"]):
                questions.setdefault(q["task"], []).append(q)
        questions.setdefault(Path(name).stem, [])
    latest: dict[tuple[str, int], dict] = {}
    for row in read_predictions(run_dir / PREDICTIONS):
        latest[(row["question_id"], int(row.get("point_idx", -1)))] = row
    return info, questions, changed, latest


def _qa_dir(run_dir: Path, info: dict) -> Path:
    """The folder of the run's question files: where run.json says, else relative to the run folder (the whole
    tree was moved)."""
    files = info.get("question_files") or {}
    qa_dir = Path(info.get("qa_dir", ""))
    if not all((qa_dir / name).exists() for name in files) and info.get("qa_dir_relative"):
        qa_dir = run_dir / info["qa_dir_relative"]
    return qa_dir


def run_question_videos(run_dirs) -> dict[str, str]:
    """``{question id: video id}`` over the question files of the runs (the clusters of the human scores)."""
    out: dict[str, str] = {}
    for run_dir in run_dirs:
        _, questions, _, _ = load_run(run_dir)
        out.update({q["id"]: q["video_id"] for qs in questions.values() for q in qs})
    return out


def question_dir(run_dir) -> Path:
    """The folder of a run folder's question files."""
    return _qa_dir(Path(run_dir), _run_info(Path(run_dir)))


def _run_fields(run_dir: Path, info: dict, changed: list[str]) -> dict:
    """What a score says about its run, under either scoring: model, gaze mode, prompt style, changed files."""
    return {"model": info.get("model"), "gaze_prompt": info.get("gaze_prompt"), "run": str(run_dir),
            "questions_changed": changed, "prompt_style": info.get("prompt_style") or "windowed",
            "flagged": info.get("flagged")}


def score_run(run_dir) -> dict:
    """The scores of one run folder (the contract's ``score --json`` object, plus detail)."""
    run_dir = Path(run_dir)
    info, questions, changed, latest = load_run(run_dir)
    tasks, units = {}, {}
    for task, qs in sorted(questions.items()):
        tasks[task], units[task] = _score_task(task, qs, latest)
    return {
        **summarise(tasks, units),
        "blind_flags": {t: v["blind_above_chance"] for t, v in tasks.items() if v.get("blind_above_chance")},
        "tasks": tasks,
        **_run_fields(run_dir, info, changed),
        **({"streaming": score_streaming(run_dir, info, questions)} if (run_dir / STREAM).exists() and info.get("streaming") else {}),
    }


def reference_trial(item, row: dict | None) -> bool | None:
    """One item under the reference's rules: None when it is no trial (no prediction, the request failed), else
    whether it is correct (`streamgaze.eval.reference_scoring`)."""
    has_prediction = row is not None and row.get("outcome") != "error" and row.get("response") is not None
    if item.proactive:
        expected_type = None if item.expected is None else int(item.expected == "yes")
        if not ref.is_trial(has_prediction, expected_type):
            return None
        return ref.proactive_correct(row.get("response"), expected_type)
    if not ref.is_trial(has_prediction):
        return None
    return ref.mcq_correct(row.get("response"), item.q["answer"])


def _score_task_reference(task: str, qs: list[dict], latest: dict) -> tuple[dict, Units]:
    items = [it for q in qs for it in items_of(q)]
    trials = [(it, reference_trial(it, latest.get(it.key))) for it in items]
    judged = [(it, ok) for it, ok in trials if ok is not None]
    units = Units.from_outcomes((it.q["id"], it.q["video_id"], ok) for it, ok in judged)
    correct = sum(ok for _, ok in judged)
    total = len(judged)
    proactive = any(it.proactive for it in items)
    return {
        "accuracy": round(ref.task_accuracy(correct, total), 4),
        "n": total,
        "correct": correct,
        "unparsed": sum(not (ref.has_yes_or_no if it.proactive else ref.has_letter)(latest[it.key].get("response"))
                        for it, _ in judged),
        "ci95": units.interval(),
        "missing": 0,  # the reference leaves them out: see "left_out"
        "left_out": len(items) - total,
        "answered": total,
        "family": (qs[0].get("family") if qs else None) or family_of(task),
        "kind": "proactive" if proactive else "mcq",
        "n_questions": len(qs),
    }, units


def score_run_reference(run_dir) -> dict:
    """The scores of one run folder under the StreamGaze reference's rules (``score --scoring reference``):
    the same shape as `score_run` (``tasks.<id>.accuracy``, ``n`` = the reference's total of trials,
    ``overall``), with ``scoring: "reference"``; ``overall`` is the unweighted mean over every task file of the
    run (`streamgaze.eval.reference_scoring.average`), ``families`` the family means over the same tasks."""
    run_dir = Path(run_dir)
    info, questions, changed, latest = load_run(run_dir)
    tasks, units = {}, {}
    for task, qs in sorted(questions.items()):
        tasks[task], units[task] = _score_task_reference(task, qs, latest)
    families: dict[str, list[float]] = {}
    members: dict[str, list[str]] = {}
    for name, t in tasks.items():
        families.setdefault(t["family"], []).append(t["accuracy"])
        members.setdefault(t["family"], []).append(name)
    missing = [t for t, v in tasks.items() if v["n"] == 0]
    overall = round(ref.average(t["accuracy"] for t in tasks.values()), 4)
    family_means = {f: round(ref.average(v), 4) for f, v in sorted(families.items())}
    cis = macro_intervals(units, {"overall": list(tasks), **{f"family {f}": v for f, v in members.items()}},
                          shown={"overall": overall, **{f"family {f}": v for f, v in family_means.items()}})
    return {
        "scoring": "reference",
        "overall": overall,
        "overall_ci95": cis["overall"],
        "complete": not missing,
        "tasks_scored": f"{len(tasks) - len(missing)}/{len(tasks)}",
        "missing_tasks": missing,
        "families": family_means,
        "families_ci95": {f: cis[f"family {f}"] for f in family_means},
        "intervals": INTERVALS,
        "tasks": tasks,
        **_run_fields(run_dir, info, changed),
    }


def _mean(values) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0


def _suite_block(tasks: dict, ids) -> dict:
    """Mean accuracy over the tasks ``ids`` that have questions; complete when every one was answered."""
    ids = list(ids)
    scored = [t for t in ids if t in tasks and tasks[t]["n"] > 0]
    missing = [t for t in ids if t not in tasks or tasks[t]["n"] == 0 or tasks[t].get("answered", tasks[t]["n"]) == 0]
    return {"overall": _mean([tasks[t]["accuracy"] for t in scored]), "complete": not missing,
            "tasks_scored": f"{len(ids) - len(missing)}/{len(ids)}", "missing_tasks": missing, "tasks": ids}


def summarise(tasks: dict, units: dict[str, Units] | None = None) -> dict:
    """The run-level numbers from per-task scores: ``suites`` (every registered suite with a task in the run),
    ``all_tasks`` (every task present), and ``overall`` / ``complete`` / ``families`` of the default suite
    (`DEFAULT_SUITE`; every task present when no plugin declares it or the run has none of its tasks).

    With ``units`` (each task's resampled units), the means get clustered intervals from one joint draw:
    ``overall_ci95``, ``families_ci95`` and each suite block's ``ci95``."""
    all_tasks = _suite_block(tasks, sorted(tasks))
    suites = {name: _suite_block(tasks, suite.tasks) for name, suite in registered_suites().items()
              if set(suite.tasks) & set(tasks)}
    main = suites.get(DEFAULT_SUITE, all_tasks)
    families: dict[str, list[float]] = {}
    members: dict[str, list[str]] = {}
    for t in main["tasks"]:
        if t in tasks and tasks[t]["n"] > 0:
            families.setdefault(tasks[t]["family"], []).append(tasks[t]["accuracy"])
            members.setdefault(tasks[t]["family"], []).append(t)
    family_means = {f: _mean(v) for f, v in sorted(families.items())}
    extra: dict = {}
    if units is not None:
        scored = lambda ids: [t for t in ids if t in tasks and tasks[t]["n"] > 0]  # noqa: E731
        blocks = {"all_tasks": all_tasks, **{f"suite {k}": v for k, v in suites.items()}}
        groups = {**{k: scored(b["tasks"]) for k, b in blocks.items()}, **{f"family {f}": m for f, m in members.items()}}
        shown = {**{k: b["overall"] for k, b in blocks.items()}, **{f"family {f}": v for f, v in family_means.items()}}
        cis = macro_intervals(units, groups, shown=shown)
        for k, b in blocks.items():
            b["ci95"] = cis[k]
        extra = {"overall_ci95": main["ci95"], "families_ci95": {f: cis[f"family {f}"] for f in family_means},
                 "intervals": INTERVALS}
    return {
        "overall": main["overall"],
        **({"overall_ci95": extra["overall_ci95"]} if extra else {}),
        "complete": main["complete"],
        "tasks_scored": main["tasks_scored"],
        "missing_tasks": main["missing_tasks"],
        "suite": DEFAULT_SUITE if main is not all_tasks else "all_tasks",
        "suites": suites,
        "all_tasks": all_tasks,
        "families": family_means,
        **({k: extra[k] for k in ("families_ci95", "intervals")} if extra else {}),
    }


def score_streaming(run_dir: Path, info: dict, questions: dict[str, list[dict]]) -> dict:
    """The streaming alert metric (tasks.md 3.5) per proactive task: with T' = max(T, P), a question's alert a
    (the first poll answered "yes") is a *hit* if o <= a <= o + T', *early* if a < o, *late* if a > o + T', and
    a *miss* without an alert; questions whose polls stopped short of the horizon without an alert (errors, a
    killed run) are misses too and also counted as ``incomplete``. Accuracy = hits / questions; reaction delay
    a - o over hits and late alerts."""
    cfg = info["streaming"]
    P, T = float(cfg["poll_s"]), float(cfg["tolerance_s"])
    T2 = max(T, P)
    rows = read_predictions(run_dir / STREAM)
    state = stream_state(rows)
    t_of = {(r["question_id"], int(r["point_idx"])): float(r["t_s"]) for r in rows if r.get("t_s") is not None}
    k_last = {r["question_id"]: int(r["k_last"]) for r in rows if r.get("k_last") is not None}
    out: dict = {"poll_s": P, "tolerance_s": T, "tolerance_used_s": T2, "tasks": {}}
    for task, qs in sorted(questions.items()):
        qs = [q for q in qs if q.get("test_points")]
        if not qs:
            continue
        c = Counter()
        delays: list[float] = []
        for q in qs:
            onset = (q.get("evidence") or {}).get("onset_s")
            st = state.get(q["id"])
            if onset is None:
                c["no_onset"] += 1
                continue
            onset = float(onset)
            if st is None or st["alert_k"] is None:
                c["miss"] += 1
                if st is None or st["next_k"] <= k_last.get(q["id"], 0):
                    c["incomplete"] += 1  # polls still to ask before the horizon
                continue
            a = t_of.get((q["id"], st["alert_k"]), float(q["time_s"]) + st["alert_k"] * P)
            if a < onset - 1e-9:
                c["early"] += 1
            elif a <= onset + T2 + 1e-9:
                c["hit"] += 1
                delays.append(a - onset)
            else:
                c["late"] += 1
                delays.append(a - onset)
        n = len(qs)
        out["tasks"][task] = {
            "n": n, "hits": c["hit"], "early": c["early"], "late": c["late"], "miss": c["miss"],
            "incomplete": c["incomplete"], "no_onset": c["no_onset"],
            "accuracy": round(c["hit"] / n, 4) if n else None,
            "early_rate": round(c["early"] / n, 4), "late_rate": round(c["late"] / n, 4), "miss_rate": round(c["miss"] / n, 4),
            "delay_mean_s": round(float(np.mean(delays)), 3) if delays else None,
            "delay_median_s": round(float(np.median(delays)), 3) if delays else None,
            "polls": sum(1 for r in rows if r.get("task") == task),
        }
    return out


def _score_task(task: str, qs: list[dict], latest: dict) -> tuple[dict, Units]:
    """One task's scores, and its resampled units (a question; a proactive question with its points)."""
    items = [it for q in qs for it in items_of(q)]
    proactive = any(it.proactive for it in items)
    outcomes = []
    missing_ids = []
    parsed_letters: Counter = Counter()
    for it in items:
        row = latest.get(it.key)
        if row is None:
            outcomes.append("missing")
            missing_ids.append(it.q["id"] if it.point_idx < 0 else f"{it.q['id']}#{it.point_idx}")
            continue
        outcomes.append(row.get("outcome") or "error")
        if row.get("parsed"):
            parsed_letters[row["parsed"]] += 1
    counts = Counter(outcomes)
    correct = np.array([o == "correct" for o in outcomes], dtype=float)
    units = Units.from_outcomes((it.q["id"], it.q["video_id"], ok) for it, ok in zip(items, correct))
    n = len(items)
    family = (qs[0].get("family") if qs else None) or family_of(task)
    out = {
        "accuracy": round(float(correct.mean()), 4) if n else None,
        "n": n,
        "correct": counts["correct"],
        "wrong": counts["wrong"],
        "unparsed": counts["unparsed"],
        "refused": counts["refused"],
        "errors": counts["error"],
        "missing": counts["missing"],
        "answered": n - counts["missing"],
        "ci95": units.interval(),
        "family": family,
        "kind": "proactive" if proactive else "mcq",
        "n_questions": len(qs),
        "missing_ids": missing_ids[:MAX_LISTED],
    }
    if proactive:
        expected = [it.expected for it in items]
        yes_exp = sum(e == "yes" for e in expected) / n if n else 0.0
        replies = [latest[it.key].get("parsed") for it in items if it.key in latest]
        out["yes_rate"] = round(sum(r == "yes" for r in replies) / len(replies), 4) if replies else None
        out["expected_yes_rate"] = round(yes_exp, 4)
        out["chance"] = round(max(yes_exp, 1 - yes_exp), 4) if n else None  # majority-class rate
        all_right = units.x == units.w  # per question: every test point right
        out["question_accuracy"] = round(float(np.mean(all_right)), 4) if len(units) else None
        out["parsed_answers"] = dict(sorted(parsed_letters.items()))
    else:
        out["chance"] = round(float(np.mean([1 / max(len(q["options"]), 1) for q in qs])), 4) if qs else 0.25
        out["answer_letters"] = dict(sorted(Counter(q["answer"] for q in qs).items()))
        out["parsed_letters"] = dict(sorted(parsed_letters.items()))
    blind_units = {b: Units.from_outcomes(blind_outcomes(qs, b)) for b in BLIND_BASELINES}
    out["ci95"], *blind_cis = stratified_intervals([units, *blind_units.values()])
    out["blind"], out["blind_above_chance"] = blind_check(blind_units, blind_cis, out["chance"], len(qs))
    return out, units


def blind_check(blind_units: dict[str, Units], cis: list, chance: float | None, n_questions: int) -> tuple[dict, list[str]]:
    """Each blind baseline's accuracy on the task's questions with its clustered interval, and the baselines
    whose interval lies entirely above ``chance`` (the task can be answered from the text alone). A task with
    fewer than `BLIND_MIN_QUESTIONS` questions is never flagged."""
    blind, above = {}, []
    for (b, units), ci in zip(blind_units.items(), cis):
        if not len(units):
            continue
        blind[b] = {"accuracy": round(float(units.x.sum() / units.w.sum()), 4), "ci95": ci}
        if chance is not None and n_questions >= BLIND_MIN_QUESTIONS and ci[0] > chance:
            above.append(b)
    return blind, above


def run_names(run_dirs: list[Path]) -> list[str]:
    names = [p.resolve().name for p in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in run_dirs]
    if len(set(names)) < len(names):
        names = [str(p) for p in run_dirs]
    return names


def score_runs(run_dirs, scoring: str = "ours") -> dict:
    """``{run name: score}``; names are the folder names (made unique). ``scoring`` "ours" (`score_run`) or
    "reference" (`score_run_reference`)."""
    run_dirs = [Path(p) for p in run_dirs]
    fn = SCORINGS[scoring]
    return {name: fn(p) for name, p in zip(run_names(run_dirs), run_dirs)}


CONTRACT_TASK_KEYS = ("accuracy", "n", "correct", "unparsed", "ci95")
SCORINGS = {"ours": score_run, "reference": score_run_reference}


def score_command(runs, report_dir=None, human: dict | None = None, scoring: str = "ours",
                  comparison: dict | None = None) -> dict:
    """``streamgaze score``'s data; writes report.md (and the chart), prints nothing (the CLI does).

    Returns ``{"scores": {run: scores}, "human": human, "reports": [paths], "json": obj}``; ``scores`` and ``obj``
    (what ``--json`` prints: the one run's scores, ``{"runs": ...}`` for several) follow ``scoring`` ("ours" or
    "reference"). The report always shows our scoring, with the reference's beside it in its own section.
    ``human`` (the review stage's `human_scores`, passed in by the CLI) is added as a column in the table and a
    key in the JSON. ``comparison`` (`streamgaze.eval.compare.compare_runs`, passed in by the CLI when it scores
    exactly two runs) adds the report's "Paired comparison" section."""
    if scoring not in SCORINGS:
        raise InputError("--scoring", f"unknown scoring {scoring!r} (one of: {', '.join(SCORINGS)})")
    out_dir = Path(report_dir) if report_dir else Path(runs[0])
    check_outputs(out_dir, REPORT_FILES)  # a bad --report fails before scoring, nothing written
    ours = score_runs(runs)
    reference = score_runs(runs, "reference")
    paths = write_report(ours, out_dir, reference=reference, comparison=comparison, human=human)
    scores = ours if scoring == "ours" else reference
    obj = next(iter(scores.values())) if len(scores) == 1 else {"runs": scores}
    if human is not None:
        obj = {**obj, "human": human}
    return {"scores": scores, "human": human, "reports": paths, "json": obj}
