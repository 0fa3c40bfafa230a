"""The task engine on the toy timeline of tasks.md 0.1, and its guarantees: determinism, causality, one correct option."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgaze.tasks import rng as rng_mod
from streamgaze.tasks.generate import run_generate
from streamgaze.tasks.testing import toy_store


FOUNDATION = ["past_object_transition_prediction", "present_object_identification_hard", "proactive_gaze_triggered_alert"]


@pytest.fixture(scope="module")
def toy_qa(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy_store(root / "toy.duckdb").close()
    report = run_generate(root / "toy.duckdb", root / "qa", seed=0, only=FOUNDATION)
    items = {}
    for f in sorted((root / "qa").glob("*.jsonl")):
        items[f.stem] = [json.loads(line) for line in f.read_text().splitlines()]
    return report, items, root


def test_candidate_rng_is_stable_and_keyed():
    a = rng_mod.candidate_rng(0, "v", "t", "e1").integers(1 << 30, size=4)
    b = rng_mod.candidate_rng(0, "v", "t", "e1").integers(1 << 30, size=4)
    c = rng_mod.candidate_rng(0, "v", "t", "e2").integers(1 << 30, size=4)
    assert (a == b).all() and not (a == c).all()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1])))
def test_seeded_generators_are_default_rng(seed):
    """tasks.md 1.4 names numpy.random.default_rng(s); the faster construction must give the same stream."""
    ours, numpy_s = rng_mod.seeded(seed), np.random.default_rng(seed)
    assert ours.bit_generator.state == numpy_s.bit_generator.state
    assert ours.permutation(7).tolist() == numpy_s.permutation(7).tolist()
    assert ours.choice(20, 3, replace=False).tolist() == numpy_s.choice(20, 3, replace=False).tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 2**32), st.sampled_from([0, 1, 2**32 - 1, 2**32,
                                                                                           2**63, 2**64 - 1])),
                min_size=1, max_size=40))
def test_seed_words_are_numpy_seed_sequences(seeds):
    """Seeding many generators at once (tasks.md 1.4's numpy.random.default_rng(s) for each s) gives their streams."""
    words = rng_mod.seed_words(seeds)
    for seed, row in zip(seeds, words):
        assert row.tolist() == np.random.SeedSequence(seed).generate_state(4, np.uint64).tolist()
    rngs = rng_mod.CandidateRngs(3, "v", [("t", f"e{i}") for i in range(5)])
    for key in ("e4", "e0", "e9"):  # in any order, and one not listed
        ours, plain = rngs.generator("t", key), rng_mod.candidate_rng(3, "v", "t", key)
        assert ours.bit_generator.state == plain.bit_generator.state
        assert ours.permutation(9).tolist() == plain.permutation(9).tolist()


def test_choice_sorts_by_key_before_drawing():
    draws = {rng_mod.choice(np.random.default_rng(5), pool) for pool in (["b", "a", "c"], ["c", "b", "a"])}
    assert len(draws) == 1


def test_every_question_has_one_correct_option(toy_qa):
    _, items, _ = toy_qa
    for task, lines in items.items():
        for q in lines:
            assert q["clip"][1] == q["time_s"] and q["clip"][0] >= 0
            if q["family"] == "proactive":
                assert q["options"] == [] and q["answer"] == ""
                assert {p["expected"] for p in q["test_points"]} == {"yes", "no"}
                continue
            assert len(q["options"]) == 4 and len(set(q["options"])) == 4
            assert q["options"]["ABCD".index(q["answer"])] == q["answer_text"]


def test_otp_matches_the_worked_example(toy_qa):
    report, items, _ = toy_qa
    otp = {q["id"].rsplit("/", 1)[1]: q for q in items["past_object_transition_prediction"]}
    assert sorted(otp) == ["e1>e2", "e2>e3", "e3>e4", "e5>e6"]
    assert report["tasks"]["past_object_transition_prediction"]["skipped"] == {"answer_in_group": 1}
    q = otp["e3>e4"]
    assert q["time_s"] == 44.0 and q["clip"] == [0.0, 44.0] and q["answer_text"] == "kettle"
    assert q["question"] == "What object does the user gaze at next after looking at the bowl, spoon?"
    assert set(q["options"]) - {"kettle"} <= {"cutting board", "fridge", "knife", "sink", "toaster", "tomato"}
    assert set(otp["e2>e3"]["options"]) == {"bowl", "fridge", "kettle", "sink"}
    assert set(otp["e1>e2"]["options"]) - {"tomato"} <= {"bowl", "fridge", "kettle", "sink"}


def test_oih_matches_the_worked_example(toy_qa):
    _, items, _ = toy_qa
    oih = {q["evidence"]["episode"]: q for q in items["present_object_identification_hard"]}
    assert len(oih) == 6
    q = oih["e4"]
    assert q["time_s"] == 41.0 and q["clip"] == [0.0, 41.0] and q["question"] == "What is this?"
    assert set(q["options"]) == {"kettle", "fridge", "sink", "toaster"} and q["answer_text"] == "kettle"
    assert oih["e5"]["clip"] == [11.0, 71.0]


def test_gta_matches_the_worked_example(toy_qa):
    report, items, _ = toy_qa
    (q,) = items["proactive_gaze_triggered_alert"]
    assert q["time_s"] == 4.0 and q["clip"] == [0.0, 4.0]
    assert q["evidence"]["target"] in {"bowl", "kettle", "mug", "tomato"}
    assert report["tasks"]["proactive_gaze_triggered_alert"]["skipped"] == {
        "cap": 3, "fixture_or_vague": 1, "gazed_at_question": 1}
    if q["evidence"]["target"] == "kettle":
        assert [(p["t_s"], p["expected"]) for p in q["test_points"]] == [
            (21.0, "no"), (31.0, "no"), (41.0, "yes"), (51.0, "yes"), (61.0, "no")]
    if q["evidence"]["target"] == "mug":
        assert 51.0 in [p["t_s"] for p in q["evidence"]["dropped_points"]]


def test_qa_items_and_skips_land_in_the_store(toy_qa):
    _, items, root = toy_qa
    from streamgaze.store import open_store

    with open_store(root / "toy.duckdb", read_only=True) as store:
        n = store.con.execute("SELECT count(*) FROM qa_items").fetchone()[0]
        skips = store.rows("SELECT reason, sum(n) AS n FROM qa_skips WHERE task = 'past_object_transition_prediction' GROUP BY reason")
    assert n == sum(len(v) for v in items.values())
    assert skips == [{"reason": "answer_in_group", "n": 1}]


GENERATE = """
import sys
from streamgaze.tasks.testing import toy_store
from streamgaze.tasks.generate import run_generate
toy_store(sys.argv[1] + '/toy.duckdb').close()
run_generate(sys.argv[1] + '/toy.duckdb', sys.argv[1] + '/qa', seed=7)
"""


def test_question_files_are_byte_identical_across_hash_seeds(tmp_path):
    outputs = []
    for hash_seed in ("0", "1", "12345"):
        out = tmp_path / hash_seed
        out.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "STREAMGAZE_PROGRESS": "0"}
        subprocess.run([sys.executable, "-c", GENERATE, str(out)], check=True, env=env)
        outputs.append({f.name: f.read_bytes() for f in sorted((out / "qa").iterdir())})
    assert outputs[0] == outputs[1] == outputs[2]
    assert any(len(b) > 0 for b in outputs[0].values())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_overlapping_episodes_fail_generate_with_one_line_and_leave_the_store(tmp_path, monkeypatch, workers):
    """One bad video among many (enough for the worker pool): exit 2, a line naming store and video, no writes."""
    from click.testing import CliRunner

    from streamgaze.cli import cli
    from streamgaze.tasks.generate import PARALLEL_FROM
    from streamgaze.store import open_store
    from streamgaze.tasks.testing import write_timeline

    monkeypatch.setenv("STREAMGAZE_WORKERS", workers)
    path = tmp_path / "s.duckdb"
    with open_store(path) as store:
        for k in range(PARALLEL_FROM + 2):
            t1 = 5.0 if k != 9 else 12.0  # v09's first episode runs into its second
            episodes = [("e1", 1.0, t1, "apple", ["bowl"], ["cup"]), ("e2", 10.0, 14.0, "bread", [], ["dish"])]
            write_timeline(store, f"v{k:02d}", episodes)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["generate", "--store", str(path), "--out", str(tmp_path / "qa")])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()
    assert len(message) == 1 and str(path) in message[0] and "'v09'" in message[0] and "overlap" in message[0]
    assert path.read_bytes() == before
