"""`streamgaze demo` end to end, as a user runs it: contract outputs, answers against the world's truth,
and byte-identical questions from two processes with different PYTHONHASHSEED."""
import json
import os
import subprocess
import sys

import pytest

from streamgaze.store import open_store

TASK_IDS = [
    "past_non_fixated_object_identification", "past_object_transition_prediction", "past_gaze_sequence_matching",
    "past_scene_recall", "present_object_identification_easy", "present_object_identification_hard",
    "present_object_attribute_recognition", "present_future_action_prediction", "proactive_gaze_triggered_alert",
    "proactive_object_appearance_alert",
]


def run_cli(args, hash_seed="0", check=True):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "STREAMGAZE_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", *args], env=env, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    runs = []
    for hash_seed in ("1", "2"):
        out = root / f"hs{hash_seed}"
        result = run_cli(["demo", "--out", str(out), "--minutes", "1", "--seed", "3"], hash_seed)
        runs.append((out, result.stdout))
    return runs


def test_demo_writes_everything_the_contract_lists(demos):
    out, stdout = demos[0]
    assert (out / "store.duckdb").is_file()
    for name in ("video.mp4", "gaze_positions.csv", "actions.csv", "truth.json"):
        assert (out / "world" / name).stat().st_size > 0
    for task_id in TASK_IDS:
        assert (out / "qa" / f"{task_id}.jsonl").read_text().strip(), f"{task_id} has no questions"
    assert (out / "results" / "report.md").is_file() and (out / "results" / "scores.png").is_file()
    assert (out / "results" / "random" / "predictions.jsonl").is_file()
    with open_store(out / "store.duckdb", read_only=True) as store:
        for table in ("videos", "gaze", "fixations", "episodes", "objects", "actions", "qa_items"):
            assert store.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    assert "Results" in stdout and "overall" in stdout and str(out / "store.duckdb") in stdout


def test_sql_counts_episodes(demos):
    out, _ = demos[0]
    result = run_cli(["sql", "select count(*) as n from episodes", "--store", str(out / "store.duckdb"), "--json"])
    assert json.loads(result.stdout)["n"] > 0


def test_score_json_has_the_contract_shape(demos):
    out, _ = demos[0]
    scores = json.loads(run_cli(["score", str(out / "results" / "random"), "--json"]).stdout)
    assert scores["complete"] is True and 0.0 <= scores["overall"] <= 1.0
    assert set(scores["tasks"]) == set(TASK_IDS)
    for task in scores["tasks"].values():
        assert {"accuracy", "n", "correct", "unparsed", "ci95"} <= set(task)


def test_object_identification_answers_are_the_true_gazed_objects(demos):
    out, _ = demos[0]
    truth = json.loads((out / "world" / "truth.json").read_text())
    names = {o["id"]: o["name"] for o in truth["objects"]}
    with open_store(out / "store.duckdb", read_only=True) as store:
        episodes = {r["episode_id"]: r for r in store.rows("SELECT episode_id, t_start, t_end FROM episodes")}
    checked = 0
    for task_id in ("present_object_identification_easy", "present_object_identification_hard"):
        for line in (out / "qa" / f"{task_id}.jsonl").read_text().splitlines():
            q = json.loads(line)
            e = episodes[q["evidence"]["episode"]]
            overlap, truly_gazed = max(
                (min(d["t_end"], e["t_end"]) - max(d["t_start"], e["t_start"]), names[d["object"]])
                for d in truth["dwells"]
            )
            assert overlap > 0 and q["answer_text"] == truly_gazed
            checked += 1
    assert checked >= 4


def test_two_processes_with_different_hash_seeds_write_identical_questions(demos):
    (a, _), (b, _) = demos
    files = sorted(p.name for p in (a / "qa").iterdir())
    assert files == sorted(p.name for p in (b / "qa").iterdir())
    for name in files:
        assert (a / "qa" / name).read_bytes() == (b / "qa" / name).read_bytes(), name
