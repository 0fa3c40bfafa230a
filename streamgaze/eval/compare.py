"""``streamgaze compare R1 R2``: the paired difference R2 - R1 on the questions both runs answered.

Per task: the difference in accuracy over the shared items (multiple-choice questions; proactive test points,
micro-averaged), a clustered bootstrap interval (videos, then questions; a proactive question with its points is
one unit: `streamgaze.eval.stats`), and an exact p-value: McNemar's test on the discordant questions for
multiple choice, a sign-flip permutation test on the per-question differences for proactive tasks (the points
of a question move together). The p-values are Holm-corrected across the tasks compared. ``overall`` is the
mean of the task differences, with an interval from the same video draws.
"""
from __future__ import annotations

from pathlib import Path

from streamgaze.eval.runner import items_of
from streamgaze.eval.score import INTERVALS, load_run, run_names
from streamgaze.eval.stats import Units, holm, macro_intervals, mcnemar_exact, sign_flip_exact

UNANSWERED = ("error", "missing")  # a row that does not hold an answer of the model


def _answered(latest: dict) -> dict[tuple[str, int], bool]:
    """``{item key: correct}`` for the items a run answered (a row whose request did not fail)."""
    return {k: r.get("outcome") == "correct" for k, r in latest.items()
            if (r.get("outcome") or "error") not in UNANSWERED}


def _task_comparison(qs: list[dict], first: dict, second: dict) -> tuple[dict, Units]:
    pairs = []  # (question id, video, correct in R1, correct in R2)
    proactive = False
    for q in qs:
        for it in items_of(q):
            proactive |= it.proactive
            if it.key in first and it.key in second:
                pairs.append((q["id"], q["video_id"], first[it.key], second[it.key]))
    units = Units.from_outcomes((qid, v, int(b) - int(a)) for qid, v, a, b in pairs)
    n = len(pairs)
    b = sum(a and not c for _, _, a, c in pairs)  # right in R1 only
    c = sum(c and not a for _, _, a, c in pairs)  # right in R2 only
    out = {
        "diff": round((c - b) / n, 4) if n else None,
        "ci95": units.interval() if n else None,
        "p": (sign_flip_exact(units.x.astype(int)) if proactive else mcnemar_exact(b, c)) if n else None,
        "p_holm": None,
        "n": n,
        "kind": "proactive" if proactive else "mcq",
        "n_questions": len(units),
        "accuracy_1": round(sum(a for _, _, a, _ in pairs) / n, 4) if n else None,
        "accuracy_2": round(sum(x for _, _, _, x in pairs) / n, 4) if n else None,
        "only_1_right": b,
        "only_2_right": c,
        "test": "sign-flip permutation over questions (exact)" if proactive else "McNemar (exact binomial)",
    }
    return out, units


def compare_runs(run_1, run_2) -> dict:
    """The paired comparison R2 - R1 (see the module docstring): ``{"tasks": {id: {"diff", "ci95", "p",
    "p_holm", "n", ...}}, "overall": {"diff", "ci95", "tasks"}, "runs": [name 1, name 2], ...}``. A task that
    only one run has, or without a shared answered item, has ``n`` 0 and no difference."""
    run_1, run_2 = Path(run_1), Path(run_2)
    info_1, questions_1, _, latest_1 = load_run(run_1)
    info_2, questions_2, _, latest_2 = load_run(run_2)
    first, second = _answered(latest_1), _answered(latest_2)
    tasks, units = {}, {}
    for task in sorted(set(questions_1) | set(questions_2)):
        qs = questions_1.get(task) if task in questions_1 and task in questions_2 else []
        tasks[task], units[task] = _task_comparison(qs or [], first, second)
    compared = [t for t, v in tasks.items() if v["n"]]
    for t, p in zip(compared, holm([tasks[t]["p"] for t in compared])):
        tasks[t]["p_holm"] = p
    diff = round(sum(tasks[t]["diff"] for t in compared) / len(compared), 4) if compared else None
    ci = macro_intervals(units, {"overall": compared}, shown={"overall": diff})["overall"] if compared else None
    names = run_names([run_1, run_2])
    return {
        "runs": names,
        "models": [info_1.get("model"), info_2.get("model")],
        "gaze_prompts": [info_1.get("gaze_prompt"), info_2.get("gaze_prompt")],
        "tasks": tasks,
        "overall": {"diff": diff, "ci95": ci, "tasks": len(compared)},
        "intervals": INTERVALS,
        "correction": "Holm across the tasks compared",
    }
