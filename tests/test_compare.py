"""``streamgaze compare``: paired differences on shared answers, exact p-values, Holm, JSON, report section."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval.compare import compare_runs
from streamgaze.eval.runner import sha256_file

MCQ = "present_object_identification_easy"
MCQ2 = "past_scene_recall"
PRO = "proactive_object_appearance_alert"


def _mcq(task: str, i: int, video: str) -> dict:
    return {"id": f"{task}/{i}", "task": task, "family": task.split("_")[0], "video_id": video,
            "question": f"Which object is the user looking at ({i})?", "options": ["mug", "plate", "sink", "kettle"],
            "answer": "A", "answer_text": "mug", "time_s": 10.0, "clip": [0.0, 10.0]}


def _pro(i: int, video: str, points: int) -> dict:
    return {"id": f"{PRO}/{i}", "task": PRO, "family": "proactive", "video_id": video,
            "question": "Alert me when the mug first appears.", "options": [], "answer": "", "answer_text": "",
            "time_s": 1.0, "clip": [0.0, 1.0], "evidence": {"target": "mug", "onset_s": 20.0},
            "test_points": [{"t_s": 10.0 * (k + 1), "expected": "no" if k == 0 else "yes"} for k in range(points)]}


def _qa(tmp_path, questions: list[dict]):
    qa = tmp_path / "qa"
    qa.mkdir()
    by_task: dict[str, list[dict]] = {}
    for q in questions:
        by_task.setdefault(q["task"], []).append(q)
    for task, qs in by_task.items():
        (qa / f"{task}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    return qa


def _run(tmp_path, name: str, qa, right: set, skip: set = frozenset(), error: set = frozenset()):
    """A run folder whose predictions are right exactly on the item keys ``right`` (``(question id, point)``);
    ``skip``: items without a row; ``error``: items whose request failed."""
    run = tmp_path / name
    run.mkdir()
    files = {p.name: sha256_file(p) for p in sorted(qa.glob("*.jsonl"))}
    (run / "run.json").write_text(json.dumps({"model": name, "gaze_prompt": "none", "qa_dir": str(qa),
                                              "question_files": files}))
    rows = []
    for p in sorted(qa.glob("*.jsonl")):
        for line in p.read_text().splitlines():
            q = json.loads(line)
            points = range(len(q["test_points"])) if q.get("test_points") else [-1]
            for k in points:
                key = (q["id"], k)
                if key in skip:
                    continue
                outcome = "error" if key in error else "correct" if key in right else "wrong"
                rows.append({"question_id": q["id"], "task": q["task"], "point_idx": k, "outcome": outcome})
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_mcnemar_on_a_hand_built_pair_of_runs(tmp_path):
    # 12 questions on 12 videos. R1 right on q0 and q10, q11; R2 right on q1..q11: discordant b = 1, c = 9
    qs = [_mcq(MCQ, i, f"v{i}") for i in range(12)]
    qa = _qa(tmp_path, qs)
    r1 = _run(tmp_path, "r1", qa, {(f"{MCQ}/{i}", -1) for i in (0, 10, 11)})
    r2 = _run(tmp_path, "r2", qa, {(f"{MCQ}/{i}", -1) for i in range(1, 12)})
    c = compare_runs(r1, r2)
    t = c["tasks"][MCQ]
    assert (t["only_1_right"], t["only_2_right"], t["n"]) == (1, 9, 12)
    assert t["p"] == 0.021484375 and t["p_holm"] == 0.021484375  # one task: Holm changes nothing
    assert t["diff"] == round(8 / 12, 4) and t["accuracy_1"] == 0.25 and t["accuracy_2"] == round(11 / 12, 4)
    assert t["ci95"][0] <= t["diff"] <= t["ci95"][1] and t["ci95"][0] > 0
    assert c["overall"]["diff"] == t["diff"] and c["overall"]["ci95"] == t["ci95"]
    # swapping the runs flips the sign, keeps the p-value
    back = compare_runs(r2, r1)["tasks"][MCQ]
    assert back["diff"] == -t["diff"] and back["p"] == t["p"]


def test_only_items_both_runs_answered_count_and_holm_corrects_across_tasks(tmp_path):
    qs = [_mcq(MCQ, i, f"v{i % 4}") for i in range(10)] + [_mcq(MCQ2, i, f"v{i % 4}") for i in range(6)]
    qa = _qa(tmp_path, qs)
    r1 = _run(tmp_path, "r1", qa, set())
    # R2 right everywhere; but q0 has no row in R2 and q1's request failed there: 8 shared MCQ questions
    r2 = _run(tmp_path, "r2", qa, {(q["id"], -1) for q in qs}, skip={(f"{MCQ}/0", -1)}, error={(f"{MCQ}/1", -1)})
    c = compare_runs(r1, r2)
    a, b = c["tasks"][MCQ], c["tasks"][MCQ2]
    assert a["n"] == 8 and a["only_2_right"] == 8 and a["p"] == pytest.approx(2 / 2 ** 8)
    assert b["n"] == 6 and b["p"] == pytest.approx(2 / 2 ** 6)
    # Holm: the smaller p times 2, the larger times 1 (kept monotone)
    assert a["p_holm"] == pytest.approx(2 * a["p"]) and b["p_holm"] == pytest.approx(max(b["p"], 2 * a["p"]))
    assert c["overall"]["diff"] == 1.0 and c["overall"]["tasks"] == 2
    assert set(c) >= {"tasks", "overall"} and set(a) >= {"diff", "ci95", "p", "p_holm", "n"}


def test_proactive_points_use_the_question_level_sign_flip_test(tmp_path):
    # 3 questions of 3 points on 3 videos. R2 gains 2 points on q0, 1 on q1, loses 1 on q2: differences 2, 1, -1.
    # Sign flips of (2, 1, 1): sums +-4 (2 of 8), +-2 (4 of 8), 0 (2 of 8); observed |2| -> p = 6/8
    qs = [_pro(i, f"v{i}", 3) for i in range(3)]
    qa = _qa(tmp_path, qs)
    r1 = _run(tmp_path, "r1", qa, {(f"{PRO}/2", 0)})
    r2 = _run(tmp_path, "r2", qa, {(f"{PRO}/0", 0), (f"{PRO}/0", 1), (f"{PRO}/1", 2)})
    t = compare_runs(r1, r2)["tasks"][PRO]
    assert t["kind"] == "proactive" and t["n"] == 9 and t["n_questions"] == 3
    assert t["diff"] == round(2 / 9, 4)
    assert t["p"] == pytest.approx(0.75)


def test_cli_json_and_report_section(tmp_path):
    qs = [_mcq(MCQ, i, f"v{i}") for i in range(6)]
    qa = _qa(tmp_path, qs)
    r1 = _run(tmp_path, "r1", qa, set())
    r2 = _run(tmp_path, "r2", qa, {(f"{MCQ}/{i}", -1) for i in range(3)})
    res = CliRunner().invoke(cli, ["compare", str(r1), str(r2), "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert obj["tasks"][MCQ]["diff"] == 0.5 and obj["overall"]["diff"] == 0.5
    res = CliRunner().invoke(cli, ["compare", str(r1), str(r2), "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Paired comparison: r2 - r1" in md and "McNemar" in md
    assert "Paired comparison" in (tmp_path / "rep" / "report.html").read_text()
    # score with two runs adds the section too; with one it does not
    res = CliRunner().invoke(cli, ["score", str(r1), str(r2), "--report", str(tmp_path / "rep2")])
    assert res.exit_code == 0, res.output
    assert "## Paired comparison" in (tmp_path / "rep2" / "report.md").read_text()
    res = CliRunner().invoke(cli, ["score", str(r1), "--report", str(tmp_path / "rep3")])
    assert "Paired comparison" not in (tmp_path / "rep3" / "report.md").read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    qs = [_mcq(MCQ, i, f"v{i}") for i in range(2)]
    r1 = _run(tmp_path, "r1", _qa(tmp_path, qs), set())
    res = CliRunner().invoke(cli, ["compare", str(r1), str(tmp_path / "empty")])
    assert res.exit_code == 2 and "not an eval run folder" in res.output
    assert len(res.output.strip().splitlines()) == 1
