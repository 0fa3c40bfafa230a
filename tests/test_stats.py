"""Clustered intervals, exact paired tests, Holm and kappa against hand-computed cases; the coverage property."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgaze.eval.runner import sha256_file
from streamgaze.eval.score import score_run
from streamgaze.eval.stats import (
    Units,
    clustered_ci,
    cluster_replicates,
    fleiss_kappa,
    holm,
    macro_intervals,
    mcnemar_exact,
    question_bootstrap_ci,
    sign_flip_exact,
)
from streamgaze.gaze.agreement import cohen_kappa

OTP = "past_object_transition_prediction"


# -- intervals ---------------------------------------------------------------------------------------------------
def test_two_videos_one_right_one_wrong_give_the_hand_computed_interval():
    # a resample draws 2 of the 2 videos: mean 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4 -> [0, 1]
    x = np.array([1.0, 1.0, 0.0, 0.0])
    assert clustered_ci(x, ["a", "a", "b", "b"]) == [0.0, 1.0]
    # the same answers as independent questions: Binomial(4, 1/2) / 4 has P(0) = P(1) = 1/16 > 2.5 %
    assert question_bootstrap_ci(x) == [0.0, 1.0]


def test_constant_outcomes_have_a_zero_width_interval():
    assert clustered_ci(np.ones(12), np.repeat(["a", "b", "c"], 4)) == [1.0, 1.0]
    assert clustered_ci(np.zeros(5), list("abcde")) == [0.0, 0.0]
    assert clustered_ci(np.zeros(0), []) == [0.0, 0.0]


def test_one_video_reduces_to_resampling_its_questions():
    # within one video the second stage is all there is: Binomial(100, 0.3) / 100, about 0.3 +- 0.09
    x = np.r_[np.ones(30), np.zeros(70)]
    lo, hi = clustered_ci(x, ["v"] * 100)
    assert 0.19 <= lo <= 0.23 and 0.37 <= hi <= 0.41


def test_weighted_units_use_the_ratio_of_sums():
    # two videos: a proactive question with 3 points all right, one with 1 point wrong. Resamples: {A,A} 1,
    # {B,B} 0, {A,B} 3/4 (weights 3 and 1), so the estimate is 0.75 and the interval [0, 1]
    reps = cluster_replicates([3.0, 0.0], ["A", "B"], w=[3.0, 1.0])
    assert reps.estimate[0] == 0.75
    assert set(np.unique(reps.values[:, 0])) == {0.0, 0.75, 1.0}
    assert reps.interval() == [0.0, 1.0]


def test_intervals_are_deterministic():
    rng = np.random.default_rng(3)
    x = (rng.random(300) < 0.6).astype(float)
    cl = rng.integers(0, 25, 300)
    assert clustered_ci(x, cl) == clustered_ci(x, cl)
    w = rng.integers(1, 4, 300).astype(float)
    assert clustered_ci(x * w, cl, w=w) == clustered_ci(x * w, cl, w=w)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4), st.integers(0, 4)), min_size=1, max_size=40))
def test_intervals_contain_the_estimate_and_stay_in_range(units):
    """Any units (video, points, right points): the interval holds the ratio estimate, inside [0, 1]."""
    clusters = [v for v, _, _ in units]
    w = np.array([n for _, n, _ in units], dtype=float)
    x = np.array([min(k, n) for _, n, k in units], dtype=float)
    lo, hi = clustered_ci(x, clusters, w=w)
    est = x.sum() / w.sum()
    assert 0.0 <= lo <= round(est, 4) + 1e-9 and round(est, 4) - 1e-9 <= hi <= 1.0


def test_index_draws_and_binomial_draws_agree():
    # the same 0/1 answers as weight-1 units (binomial path) and doubled (x 2, w 2: the index path): the same
    # distribution of the estimate, so nearly the same interval
    rng = np.random.default_rng(5)
    videos = np.repeat(np.arange(30), rng.integers(2, 9, 30))
    x = (rng.random(len(videos)) < 0.6).astype(float)
    a = clustered_ci(x, videos)
    b = clustered_ci(2 * x, videos, w=np.full(len(x), 2.0))
    assert abs(a[0] - b[0]) < 0.03 and abs(a[1] - b[1]) < 0.03


def _coverage(n_sims=300, n_videos=40, mean=0.6, icc=0.3, seed=1):
    """Simulated runs with within-video correlation: each video's accuracy ~ Beta(mean, icc), its 4..16
    questions right with that probability. The share of 95 % intervals that cover ``mean``."""
    rng = np.random.default_rng(seed)
    s = 1 / icc - 1
    covered_clustered = covered_questions = 0
    for i in range(n_sims):
        sizes = rng.integers(4, 17, size=n_videos)
        p = rng.beta(mean * s, (1 - mean) * s, size=n_videos)
        videos = np.repeat(np.arange(n_videos), sizes)
        x = (rng.random(sizes.sum()) < np.repeat(p, sizes)).astype(float)
        lo, hi = clustered_ci(x, videos, seed=i)
        covered_clustered += lo <= mean <= hi
        lo, hi = question_bootstrap_ci(x, seed=i)
        covered_questions += lo <= mean <= hi
    return covered_clustered / n_sims, covered_questions / n_sims


def test_clustered_intervals_cover_the_true_accuracy_and_per_question_ones_do_not():
    clustered, per_question = _coverage()
    assert clustered >= 0.93
    assert per_question < 0.85  # far below the nominal 95 %: questions of a video are not independent
    assert clustered - per_question > 0.1


def test_macro_interval_of_task_means_shares_the_video_draw():
    # two tasks on the same 20 videos, both right on even videos and wrong on odd ones: the mean of the two
    # task accuracies moves exactly like each task (the draws are joint), so its interval is as wide
    videos = np.repeat(np.arange(20), 3)
    x = (videos % 2 == 0).astype(float)
    units = {t: Units(x, np.ones_like(x), list(videos)) for t in ("t1", "t2")}
    cis = macro_intervals(units, {"overall": ["t1", "t2"], "t1": ["t1"]})
    assert cis["overall"] == cis["t1"]
    assert cis["overall"][1] - cis["overall"][0] > 0.3


def _write_run(tmp_path, questions: list[dict], correct: dict[str, bool], task=OTP):
    qa = tmp_path / "qa"
    qa.mkdir(exist_ok=True)
    path = qa / f"{task}.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "run.json").write_text(json.dumps({"model": "fixed", "gaze_prompt": "none", "qa_dir": str(qa),
                                              "question_files": {path.name: sha256_file(path)}}))
    rows = [{"question_id": q["id"], "task": task, "point_idx": -1, "parsed": "A" if correct[q["id"]] else "B",
             "outcome": "correct" if correct[q["id"]] else "wrong"} for q in questions]
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _otp_question(video: int, k: int) -> dict:
    return {"id": f"{OTP}/v{video}/{k}", "task": OTP, "family": "past", "video_id": f"v{video}",
            "question": "What object does the user gaze at next?", "options": ["mug", "plate", "sink", "kettle"],
            "answer": "A", "answer_text": "mug", "time_s": 10.0, "clip": [0.0, 10.0]}


def test_the_issue_example_forty_videos_even_right_odd_wrong(tmp_path):
    """40 videos of 16 OTP questions; every question of an even video right, of an odd one wrong. Per question
    the interval is about 0.078 wide; resampling videos it is about 0.3."""
    questions = [_otp_question(v, k) for v in range(40) for k in range(16)]
    correct = {q["id"]: int(q["video_id"][1:]) % 2 == 0 for q in questions}
    s = score_run(_write_run(tmp_path, questions, correct))
    t = s["tasks"][OTP]
    assert t["accuracy"] == 0.5 and t["n"] == 640
    width = t["ci95"][1] - t["ci95"][0]
    assert 0.26 <= width <= 0.34
    naive = question_bootstrap_ci(np.array([correct[q["id"]] for q in questions], dtype=float))
    assert 0.07 <= naive[1] - naive[0] <= 0.085
    # the overall (one task here) and the family get the same clustered interval
    assert s["overall_ci95"] == t["ci95"] and s["families_ci95"]["past"] == t["ci95"]
    assert "videos" in s["intervals"]


# -- paired tests ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("b, c, p", [
    (1, 9, 0.021484375),  # 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    (9, 1, 0.021484375),
    (0, 5, 0.0625),  # 2 / 32
    (3, 3, 1.0),
    (0, 0, 1.0),
    (2, 8, 0.109375),  # 2 * (1 + 10 + 45) / 1024 = 112 / 1024
])
def test_mcnemar_exact_against_hand_computed_tables(b, c, p):
    assert mcnemar_exact(b, c) == p


def test_sign_flip_equals_mcnemar_on_single_points_and_counts_by_hand():
    assert sign_flip_exact([1] + [-1] * 9) == pytest.approx(0.021484375, abs=1e-15)
    # differences 2 and 1: sums +-2 +-1 in {3, 1, -1, -3}, each 1/4; observed 3 -> P(|S| >= 3) = 1/2
    assert sign_flip_exact([2, 1]) == pytest.approx(0.5)
    # differences 2, 2, 1 observed 5: only the all-positive and all-negative of 8 outcomes reach |5|
    assert sign_flip_exact([2, 2, 1]) == pytest.approx(0.25)
    assert sign_flip_exact([0, 0]) == 1.0


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 = 1; 0.9 x 1 raised to 1 (monotone)
    assert holm([0.01, 0.5]) == pytest.approx([0.02, 0.5])
    out = holm([0.01, float("nan"), 0.02])
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)


# -- agreement ---------------------------------------------------------------------------------------------------
def test_cohen_kappa_textbook():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15 -> p_o 0.7, p_e 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_fleiss_kappa_textbook():
    # Fleiss (1971) style example: 10 items, 14 raters, 5 categories: P = 0.378, P_e = 0.2128, kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    # two raters, two categories by hand: items (yes,yes), (no,no), (yes,no): P = (1 + 1 + 0) / 3,
    # p_yes = 3/6, P_e = 0.5, kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert fleiss_kappa([[2, 0], [0, 2], [1, 1]]) == pytest.approx(1 / 3)
    assert np.isnan(fleiss_kappa([[3, 0], [3, 0]]))  # every rating in one category
    assert np.isnan(fleiss_kappa(np.zeros((0, 2))))


# -- the human baseline: agreement between reviewers, clustered human accuracy ------------------------------------
def _review_store(tmp_path):
    """A store whose qa_items know four questions on two videos (no video files needed to record reviews)."""
    import pyarrow as pa

    from streamgaze.store import open_store

    qs = [_otp_question(v, k) for v in (0, 1) for k in (0, 1)]
    for q, answer in zip(qs, "ABAC"):
        q["answer"], q["answer_text"] = answer, q["options"]["ABCD".index(answer)]
    store = tmp_path / "store.duckdb"
    with open_store(store) as s, s.transaction():
        s.insert("qa_items", pa.table({
            "id": [q["id"] for q in qs], "task": [OTP] * 4, "family": ["past"] * 4,
            "video_id": [q["video_id"] for q in qs], "time_s": [10.0] * 4, "clip_start": [0.0] * 4,
            "clip_end": [10.0] * 4, "question": [q["question"] for q in qs], "answer": [q["answer"] for q in qs],
            "answer_text": [q["answer_text"] for q in qs], "item": [json.dumps(q) for q in qs]}))
    return store, qs


def test_two_reviewers_get_cohens_kappa_and_a_clustered_human_accuracy(tmp_path):
    from click.testing import CliRunner

    from streamgaze.cli import cli
    from streamgaze.review.data import human_scores, record_review

    store, qs = _review_store(tmp_path)
    # ann A B A C (all right), bob A C A C: p_o 3/4; marginals ann A .5 B .25 C .25, bob A .5 C .5:
    # p_e = .25 + 0 + .125 = .375, kappa = (.75 - .375) / .625 = 0.6
    for q, a, b in zip(qs, "ABAC", "ACAC"):
        record_review(store, q, reviewer="ann", mode="answer", answer=a)
        record_review(store, q, reviewer="bob", mode="answer", answer=b)
    h = human_scores(store)
    ag = h["agreement"]["answers"]
    assert ag["method"] == "cohen" and ag["items"] == 4 and ag["kappa"] == 0.6 and ag["agreement"] == 0.75
    assert h["agreement"]["answers_by_task"][OTP]["kappa"] == 0.6
    assert h["agreement"]["verdicts"] is None  # nobody verified
    t = h["tasks"][OTP]
    assert t["accuracy"] == 0.875 and t["n"] == 8
    # clustered: two videos (7/8 right overall: video 0 4/4, video 1 3/4); a resample of {v1, v1} draws only
    # video 1's questions, so the interval reaches below what video 0 alone would give
    assert t["ci95"][0] < 0.75 and t["ci95"][1] == 1.0 and "videos" in h["intervals"]
    assert h["overall_ci95"][0] <= h["overall"] <= h["overall_ci95"][1]
    out = CliRunner().invoke(cli, ["review-score", "--store", str(store)])
    assert out.exit_code == 0 and "Cohen's kappa 0.600" in out.output


def test_three_reviewers_get_fleiss_kappa_on_verdicts(tmp_path):
    from streamgaze.review.data import human_scores, record_review

    store, qs = _review_store(tmp_path)
    # q0: valid x3; q1: valid, invalid, invalid; q2: invalid, invalid (two raters); q3: one rater (left out).
    # P = (1 + 1/3 + 1) / 3 = 7/9; p_valid = p_invalid = 4/8, P_e = 1/2; kappa = (7/9 - 1/2) / (1/2) = 5/9
    verdicts = {0: ("valid", "valid", "valid"), 1: ("valid", "invalid", "invalid"), 2: ("invalid", "invalid", None),
                3: ("valid", None, None)}
    for i, vs in verdicts.items():
        for reviewer, v in zip(("ann", "bob", "cy"), vs):
            if v:
                record_review(store, qs[i], reviewer=reviewer, mode="verify", verdict=v,
                              reason="wrong key" if v == "invalid" else None)
    ag = human_scores(store)["agreement"]["verdicts"]
    assert ag["method"] == "fleiss" and ag["reviewers"] == 3 and ag["items"] == 3
    assert ag["kappa"] == round(5 / 9, 4) and ag["agreement"] == round(7 / 9, 4)
