"""Scoring: missing predictions count wrong, bootstrap CI contains the accuracy, JSON shape, report files."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval.report import write_report
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.eval.score import bootstrap_ci, score_run, score_runs
from streamgaze.tasks.suites import DEFAULT_SUITE, registered_suites

TASK_IDS = registered_suites()[DEFAULT_SUITE].tasks


def _qa(tmp_path, tasks=TASK_IDS, n=8):
    qa = tmp_path / "qa"
    qa.mkdir()
    for task in tasks:
        fam = task.split("_")[0]
        rows = []
        for i in range(n):
            q = {"id": f"{task}-{i}", "task": task, "family": fam, "video_id": "v", "question": f"q{i}?",
                 "options": ["w", "x", "y", "z"], "answer": "ABCD"[i % 4], "answer_text": "wxyz"[i % 4],
                 "time_s": 10.0, "clip": [0.0, 10.0], "evidence": {"target": "mug"}}
            if fam == "proactive":
                q.update(options=[], answer="", answer_text="",
                         test_points=[{"t_s": 10.0 + 10 * k, "expected": "yes" if k == 1 else "no"} for k in range(3)])
            rows.append(json.dumps(q))
        (qa / f"{task}.jsonl").write_text("\n".join(rows) + "\n")
    return qa


def test_first_option_scores_and_json_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    qa = _qa(tmp_path)
    run_eval(qa, EvalConfig("first-option", tmp_path / "R"))
    s = score_run(tmp_path / "R")
    assert s["complete"] is True and s["missing_tasks"] == []
    for t in TASK_IDS:
        ts = s["tasks"][t]
        if t.startswith("proactive"):
            assert ts["n"] == 24 and ts["accuracy"] == round(8 / 24, 4)  # "Yes" right at 1 of 3 points
            assert ts["yes_rate"] == 1.0 and ts["question_accuracy"] == 0.0
        else:
            assert ts["n"] == 8 and ts["accuracy"] == 0.25 and ts["answer_letters"] == {"A": 2, "B": 2, "C": 2, "D": 2}
    assert s["families"]["past"] == 0.25
    assert abs(s["overall"] - np.mean([s["tasks"][t]["accuracy"] for t in TASK_IDS])) < 1e-4
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "R"), "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.output)  # exactly one JSON object on stdout
    assert set(obj) >= {"overall", "complete", "tasks", "families"}
    for ts in obj["tasks"].values():
        assert set(ts) >= {"accuracy", "n", "correct", "unparsed", "ci95"}
        assert ts["ci95"][0] <= ts["accuracy"] <= ts["ci95"][1]
    assert (tmp_path / "R" / "report.md").exists() and (tmp_path / "R" / "scores.png").stat().st_size > 1000


def test_a_plugin_task_is_scored_under_all_tasks_and_never_moves_the_streamgaze_overall(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    qa = _qa(tmp_path)
    before = tmp_path / "before"
    run_eval(qa, EvalConfig("first-option", before))
    extra = [json.dumps({"id": f"x-{i}", "task": "past_longest_look", "family": "past", "video_id": "v",
                         "question": "q?", "options": ["w", "x", "y", "z"], "answer": "A", "answer_text": "w",
                         "time_s": 10.0, "clip": [0.0, 10.0], "evidence": {}}) for i in range(8)]
    (qa / "past_longest_look.jsonl").write_text("\n".join(extra) + "\n")
    run_eval(qa, EvalConfig("first-option", tmp_path / "after"))
    a, b = score_run(before), score_run(tmp_path / "after")
    assert b["tasks"]["past_longest_look"]["accuracy"] == 1.0
    assert (b["overall"], b["complete"], b["families"]) == (a["overall"], a["complete"], a["families"])
    assert set(b["suites"]) == {DEFAULT_SUITE} and b["suites"][DEFAULT_SUITE]["overall"] == a["overall"]
    assert b["all_tasks"]["tasks"] == sorted([*TASK_IDS, "past_longest_look"])
    assert b["all_tasks"]["overall"] == round(np.mean([t["accuracy"] for t in b["tasks"].values()]), 4) > a["overall"]


def test_missing_predictions_count_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    qa = _qa(tmp_path, tasks=["past_scene_recall", "proactive_gaze_triggered_alert"], n=4)
    run_eval(qa, EvalConfig("first-option", tmp_path / "R"))
    pred = tmp_path / "R" / "predictions.jsonl"
    rows = [json.loads(x) for x in pred.read_text().splitlines()]
    keep = [r for r in rows if not (r["question_id"] == "past_scene_recall-0" or r["question_id"] == "proactive_gaze_triggered_alert-0")]
    pred.write_text("".join(json.dumps(r) + "\n" for r in keep))
    s = score_run(tmp_path / "R")
    psr = s["tasks"]["past_scene_recall"]
    assert psr["n"] == 4 and psr["missing"] == 1 and psr["correct"] == 0  # the one "A" answer was dropped
    assert psr["accuracy"] == 0.0 and psr["missing_ids"] == ["past_scene_recall-0"]
    gta = s["tasks"]["proactive_gaze_triggered_alert"]
    assert gta["n"] == 12 and gta["missing"] == 3 and gta["accuracy"] == 0.25
    assert s["complete"] is False and "past_non_fixated_object_identification" in s["missing_tasks"]
    assert s["tasks_scored"] == "2/10"


def test_task_with_no_predictions_is_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    qa = _qa(tmp_path)
    run_eval(qa, EvalConfig("random", tmp_path / "R"))
    pred = tmp_path / "R" / "predictions.jsonl"
    rows = [json.loads(x) for x in pred.read_text().splitlines()]
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows if r["task"] != "past_scene_recall"))
    s = score_run(tmp_path / "R")
    assert s["complete"] is False and s["missing_tasks"] == ["past_scene_recall"]
    assert s["tasks"]["past_scene_recall"]["accuracy"] == 0.0


def test_bootstrap_contains_accuracy_and_is_seeded():
    rng = np.random.default_rng(1)
    for n in (1, 5, 40, 500):
        x = (rng.random(n) < 0.6).astype(float)
        lo, hi = bootstrap_ci(x)
        assert 0.0 <= lo <= x.mean() <= hi <= 1.0
        assert bootstrap_ci(x) == [lo, hi]
    lo, hi = bootstrap_ci(np.r_[np.ones(50), np.zeros(50)])
    assert 0.38 < lo < 0.45 and 0.55 < hi < 0.62
    assert bootstrap_ci(np.array([])) == [0.0, 0.0]


def test_two_runs_report(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    qa = _qa(tmp_path)
    for m in ("random", "first-option"):
        run_eval(qa, EvalConfig(m, tmp_path / "results" / m))
    scores = score_runs([tmp_path / "results" / "random", tmp_path / "results" / "first-option"])
    assert list(scores) == ["random", "first-option"]
    paths = write_report(scores, tmp_path / "results")
    md = (tmp_path / "results" / "report.md").read_text()
    assert "0.827" in md and "0.25" in md and "random" in md and "first-option" in md and "scores.png" in md
    assert all(p.exists() for p in paths)
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "results" / "random"), str(tmp_path / "results" / "first-option"),
                                      "--json", "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0
    assert set(json.loads(result.output)["runs"]) == {"random", "first-option"}
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "results" / "random")])
    assert result.exit_code == 0 and "overall" in result.output
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "qa")])
    assert result.exit_code == 2 and "run.json" in result.output
