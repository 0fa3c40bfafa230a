"""The reference's scoring (`score --scoring reference`) and its result layout (`export reference-results`):
every rule, a run folder with hand-written predictions, and an independent re-implementation of the reference's
evaluate_results.py reading the exported files, which must give the same numbers."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval import reference_scoring as ref
from streamgaze.eval.reference_results import export_reference_results
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.eval.score import CONTRACT_TASK_KEYS, score_run, score_run_reference

MCQ = "present_object_identification_easy"
PRO = "proactive_gaze_triggered_alert"
REL = "present_object_identification_hard"  # a released .json question file


# -- the rules -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, letter", [
    ("Answer: C", "C"),
    ("C", "C"),
    ("(b)", "B"),
    ("I think the mug, so D", "D"),          # the first standalone letter
    ("I think a mug, so D", "A"),            # ... which is the article "a" once upper-cased: the reference's pitfall
    ("a cup", "A"),                          # "A CUP": \bA\b matches the article
    ("the cup", "THE CUP"),                  # no standalone A-D: the whole upper-cased string
    ("  mug  ", "MUG"),                      # stripped
    ("", ""),
    (None, ""),
    ("ABCD", "ABCD"),                        # letters inside a word are not standalone
    ("E", "E"),
])
def test_extract_letter(text, letter):
    assert ref.extract_letter(text) == letter


def test_mcq_rule_passes_both_sides_through_the_same_function():
    assert ref.mcq_correct("Answer: C", "C")
    assert ref.mcq_correct("C. a mug", "C")   # "C. A MUG": C comes first
    assert ref.mcq_correct("a cup", "A")      # right by accident: the article
    assert not ref.mcq_correct("a cup", "B")
    assert not ref.mcq_correct("", "C")        # an empty reply is a wrong trial, not a missing one
    assert ref.mcq_correct("the cup", "The cup")  # no letter on either side: whole strings compared
    assert ref.has_yes_or_no("Nope") and not ref.has_yes_or_no("Maybe later")
    assert not ref.has_letter("the cup") and ref.has_letter("a cup")


@pytest.mark.parametrize("response, type_, ok", [
    ("Yes", 1, True), ("Yes", 0, False),
    ("No", 0, True), ("No", 1, False),
    ("Yes, not yet", 1, True), ("Yes, not yet", 0, True),  # "YES, NOT YET" holds both substrings
    ("Nope", 0, True), ("Nope", 1, False),                  # "NOPE" holds "NO"
    ("I do not know", 0, True),                             # "NOT" holds "NO"
    ("Eyes on it", 1, True),                                # "EYES" holds "YES"
    ("", 0, False), ("", 1, False), (None, 0, False),
])
def test_proactive_substring_rule(response, type_, ok):
    assert ref.proactive_correct(response, type_) is ok


def test_trials_accuracy_and_average():
    assert ref.is_trial(True, 1) and ref.is_trial(True, 0)
    assert not ref.is_trial(False, 1)          # no prediction: left out
    assert not ref.is_trial(True, None)        # no expected type: left out
    assert ref.task_accuracy(2, 3) == 2 / 3 and ref.task_accuracy(0, 0) == 0.0
    assert ref.average([1.0, 0.5]) == 0.75 and ref.average([]) == 0.0


# -- a run folder --------------------------------------------------------------------------------------
def _mcq_line(task, i, answer, evidence):
    k = "ABCD".index(answer)
    return {"id": f"{task}-{i}", "task": task, "family": "present", "video_id": "v", "question": f"Which object {i}?",
            "options": ["cup", "mug", "pan", "pot"], "answer": answer, "answer_text": ["cup", "mug", "pan", "pot"][k],
            "time_s": 30.0 + i, "clip": [0.0, 30.0 + i], "evidence": evidence}


def _run(tmp_path):
    qa = tmp_path / "qa"
    qa.mkdir()
    mcq = [_mcq_line(MCQ, i, a, {"object": "mug"}) for i, a in enumerate("ABCDA")]
    pro = [{"id": f"{PRO}-{i}", "task": PRO, "family": "proactive", "video_id": "v", "question": f"Alert me {i}",
            "options": [], "answer": "", "answer_text": "", "time_s": 10.0, "clip": [0.0, 10.0],
            "evidence": {"target": "mug", "event_intervals": [[18.0, 21.0]], "onset_s": 18.0},
            "test_points": [{"t_s": 10.0, "expected": "no"}, {"t_s": 20.0, "expected": "yes"},
                            {"t_s": 40.0, "expected": "no"}]} for i in range(2)]
    (qa / f"{MCQ}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in mcq))
    (qa / f"{PRO}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in pro))
    released = [
        {"response_time": "[00:00 - 00:20]", "video_categories": "EGTEA", "video_path": "v.mp4",
         "questions": [{"task_type": "Object Identification (Hard)", "question": "What is gazed first?",
                        "time_stamp": "00:20", "answer": "A", "options": ["A. cup", "B. mug", "C. pan", "D. pot"]}]},
        {"response_time": "[00:00 - 00:40]", "video_categories": "EGTEA", "video_path": "v.mp4",
         "questions": [{"task_type": "Object Identification (Hard)", "question": "What is gazed second?",
                        "time_stamp": "00:40", "answer": "B", "options": ["A. cup", "B. mug", "C. pan", "D. pot"]},
                       {"task_type": "Object Identification (Hard)", "question": "What is gazed third?",
                        "time_stamp": "00:41", "answer": "C", "options": ["A. cup", "B. mug", "C. pan", "D. pot"]}]},
    ]
    (qa / f"{REL}.json").write_text(json.dumps(released))
    run = tmp_path / "R"
    run_eval(qa, EvalConfig("first-option", run))
    rows = [
        # MCQ: the article "a" read as A (right by accident), "Answer: B", the pitfall (A, wrong), an errored
        # request (left out), a missing prediction (q4: left out)
        (MCQ, f"{MCQ}-0", -1, "a cup", "unparsed"),
        (MCQ, f"{MCQ}-1", -1, "Answer: B", "correct"),
        (MCQ, f"{MCQ}-2", -1, "I think a mug, so D", "wrong"),
        (MCQ, f"{MCQ}-3", -1, None, "error"),
        # proactive: "Yes, not yet" right at every point; "Nope" right for no; q1 point 2 missing
        (PRO, f"{PRO}-0", 0, "Yes, not yet", "wrong"),
        (PRO, f"{PRO}-0", 1, "Yes, not yet", "correct"),
        (PRO, f"{PRO}-0", 2, "Yes, not yet", "wrong"),
        (PRO, f"{PRO}-1", 0, "Nope", "unparsed"),
        (PRO, f"{PRO}-1", 1, "No", "wrong"),
        # released file: item 0, item 1 with two questions
        (REL, f"{REL}-0-0", -1, "A", "correct"),
        (REL, f"{REL}-1-0", -1, "C", "wrong"),
        (REL, f"{REL}-1-1", -1, "(C)", "correct"),
    ]
    with open(run / "predictions.jsonl", "w") as fh:
        for task, qid, k, response, outcome in rows:
            row = {"question_id": qid, "task": task, "point_idx": k, "model": "hand", "gaze_prompt": "none",
                   "response": response, "parsed": None, "outcome": outcome, "latency_s": 1.23456, "frames": []}
            if k >= 0:
                row["t_s"] = [10.0, 20.0, 40.0][k]
            if response is None:
                row["error"] = "APIConnectionError: Connection error."
            fh.write(json.dumps(row) + "\n")
    return run


EXPECTED = {MCQ: (2, 3), PRO: (4, 5), REL: (2, 3)}  # (correct, total) under the reference's rules


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    return _run(tmp_path)


def test_reference_scoring_of_a_run_folder(run):
    s = score_run_reference(run)
    assert s["scoring"] == "reference"
    for task, (correct, total) in EXPECTED.items():
        t = s["tasks"][task]
        assert (t["correct"], t["n"]) == (correct, total), task
        assert t["accuracy"] == round(correct / total, 4)
    assert s["tasks"][MCQ]["left_out"] == 2 and s["tasks"][PRO]["left_out"] == 1
    assert s["tasks"][MCQ]["unparsed"] == 0  # every reply had a standalone letter (the article included)
    assert s["tasks"][PRO]["unparsed"] == 0  # "Nope" holds "NO"
    assert s["overall"] == round((2 / 3 + 4 / 5 + 2 / 3) / 3, 4)
    ours = score_run(run)
    assert ours["tasks"][MCQ]["n"] == 5 and ours["tasks"][MCQ]["accuracy"] == round(1 / 5, 4)
    assert ours["tasks"][PRO]["n"] == 6


def _independent(results_dir):
    """A minimal re-implementation of the reference's evaluate_results.py over DIR/NAME/results/*.json."""
    def letter(text):
        up = str(text).upper()
        m = re.search(r"\b([ABCD])\b", up)
        return m.group(1) if m else up.strip()

    per_task = {}
    for f in sorted(results_dir.glob("*_output.json")):
        correct = total = 0
        for item in json.loads(f.read_text()):
            preds = item.get("model_predictions") or []
            for q in item["questions"]:
                if "test_info" in q:
                    for p in q["test_info"]:
                        if p.get("type") is None or "response" not in p:
                            continue
                        total += 1
                        correct += ("YES" if p["type"] == 1 else "NO") in str(p["response"]).upper()
                    continue
                for p in preds:
                    if p["question"] == q["question"] and p["time_stamp"] == q["time_stamp"]:
                        total += 1
                        correct += letter(p["model_prediction"]) == letter(q["answer"])
        per_task[f.name[: -len("_output.json")]] = correct / total if total else 0.0
    return per_task, sum(per_task.values()) / len(per_task)


def test_export_and_an_independent_rescore_give_the_same_numbers(run, tmp_path):
    out = tmp_path / "ref"
    res = CliRunner().invoke(cli, ["export", "reference-results", str(run), "--out", str(out), "--model-name", "hand"])
    assert res.exit_code == 0, res.output
    results = out / "hand" / "results"
    assert sorted(p.name for p in results.iterdir()) == sorted(f"{t}_output.json" for t in EXPECTED)
    per_task, avg = _independent(results)
    res = CliRunner().invoke(cli, ["score", str(run), "--scoring", "reference", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert {t: v["accuracy"] for t, v in obj["tasks"].items()} == {t: round(v, 4) for t, v in per_task.items()}
    assert obj["overall"] == round(avg, 4)
    assert per_task == {t: c / n for t, (c, n) in EXPECTED.items()}


def test_exported_items_keep_the_released_shape_and_carry_the_answers(run, tmp_path):
    summary = export_reference_results(run, tmp_path / "ref", "hand", viz=True)
    results = tmp_path / "ref" / "hand" / "results_viz"
    assert summary[MCQ]["items"] == 5 and summary[REL]["items"] == 2
    mcq = json.loads((results / f"{MCQ}_output.json").read_text())
    assert set(mcq[0]) == {"response_time", "questions", "video_categories", "video_path", "model_predictions"}
    assert mcq[0]["video_path"] == "v.mp4" and mcq[0]["questions"][0]["answer"] == "A"
    assert mcq[0]["model_predictions"] == [{"question": "Which object 0?", "time_stamp": "00:30",
                                            "model_prediction": "a cup", "model_response_time_sec": 1.2346,
                                            "model_response_time_formatted": "1.23s"}]
    assert "model_predictions" not in mcq[3] and "model_predictions" not in mcq[4]  # error, missing
    rel = json.loads((results / f"{REL}_output.json").read_text())
    released = json.loads((run.parent / "qa" / f"{REL}.json").read_text())
    for got, orig in zip(rel, released):  # the released items themselves, in order, plus the answers
        assert {k: v for k, v in got.items() if k != "model_predictions"} == orig
    assert [p["model_prediction"] for p in rel[1]["model_predictions"]] == ["C", "(C)"]
    pro = json.loads((results / f"{PRO}_output.json").read_text())
    info = pro[1]["questions"][0]["test_info"]
    assert [p["type"] for p in info] == [0, 1, 0]  # the expected answers the run was scored against
    assert info[0] == {"realtime": "00:10", "type": 0, "response": "Nope", "response_time_sec": 1.2346, "cost": 0.0}
    assert "response" not in info[2]


def test_score_json_shape_and_report_show_both_scorings(run, tmp_path):
    res = CliRunner().invoke(cli, ["score", str(run), "--scoring", "reference", "--json"])
    obj = json.loads(res.output)
    assert obj["scoring"] == "reference" and set(obj) >= {"overall", "complete", "tasks", "families"}
    for t in obj["tasks"].values():
        assert set(t) >= set(CONTRACT_TASK_KEYS) and 0.0 <= t["accuracy"] <= 1.0
    ours = json.loads(CliRunner().invoke(cli, ["score", str(run), "--json"]).output)
    assert "scoring" not in ours and ours["tasks"][MCQ]["n"] == 5  # the default is unchanged
    res = CliRunner().invoke(cli, ["score", str(run), "--scoring", "reference"])
    assert res.exit_code == 0 and "0.667" in res.output
    md = (run / "report.md").read_text()
    assert "## Reference scoring" in md
    assert f"| {MCQ} | 0.200 / 0.667 (+0.467) | 3 |" in md
    assert "Reference scoring" in (run / "report.html").read_text()


def test_export_refuses_a_model_name_that_is_not_a_folder_name(run, tmp_path):
    res = CliRunner().invoke(cli, ["export", "reference-results", str(run), "--out", str(tmp_path / "o"),
                                   "--model-name", "a/b"])
    assert res.exit_code == 2 and "--model-name" in res.output
    assert not (tmp_path / "o").exists()


def test_two_runs_side_by_side_and_a_bad_scoring_name(run, tmp_path):
    import shutil

    other = tmp_path / "R2"
    shutil.copytree(run, other)
    res = CliRunner().invoke(cli, ["score", str(run), str(other), "--scoring", "reference", "--json",
                                   "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert set(obj["runs"]) == {"R", "R2"} and all(r["scoring"] == "reference" for r in obj["runs"].values())
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "R: ours / reference (diff)" in md and "R2: ours / reference (diff)" in md
    res = CliRunner().invoke(cli, ["score", str(run), "--scoring", "theirs"])
    assert res.exit_code == 2
