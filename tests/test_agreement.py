"""streamgaze.gaze.agreement: sample labels from events and Cohen's kappa, against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from streamgaze.gaze.agreement import cohen_kappa, sample_labels


def pairs(n11: int, n10: int, n01: int, n00: int):
    """Two labellings with the given 2x2 counts (n10: a says 1, b says 0)."""
    a = np.array([1] * n11 + [1] * n10 + [0] * n01 + [0] * n00, bool)
    b = np.array([1] * n11 + [0] * n10 + [1] * n01 + [0] * n00, bool)
    return a, b


def test_kappa_hand_computed_2x2():
    # 20/5/10/15 of 50: p_o = 35/50 = 0.7; a yes 25/50, b yes 30/50 -> p_e = .5*.6 + .5*.4 = 0.5; kappa = 0.4
    assert cohen_kappa(*pairs(20, 5, 10, 15)) == pytest.approx(0.4)
    # 45/15/25/15 of 100: p_o = 0.6; a yes .6, b yes .7 -> p_e = .42 + .12 = .54; kappa = .06 / .46
    assert cohen_kappa(*pairs(45, 15, 25, 15)) == pytest.approx(0.06 / 0.46)
    # 4/1/1/4: p_o = .8, p_e = .5 -> .6; symmetric in a and b; ints and bools alike
    a, b = pairs(4, 1, 1, 4)
    assert cohen_kappa(a, b) == pytest.approx(0.6) == cohen_kappa(b, a)
    assert cohen_kappa(a.astype(int), b.astype(np.int8)) == pytest.approx(0.6)


def test_kappa_perfect_and_opposite():
    a = np.array([1, 0, 1, 0, 1, 1], bool)
    assert cohen_kappa(a, a) == 1.0
    # complete disagreement with balanced classes: p_o = 0, p_e = .5 -> -1
    b = np.array([1, 0, 1, 0], bool)
    assert cohen_kappa(b, ~b) == pytest.approx(-1.0)


def test_kappa_three_classes():
    # a: 0 0 0 1 1 2 ; b: 0 0 1 1 2 2 -> p_o = 4/6; a shares (3,2,1)/6, b (2,2,2)/6 -> p_e = (6+4+2)/36 = 1/3
    # kappa = (2/3 - 1/3) / (2/3) = 0.5
    assert cohen_kappa([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]) == pytest.approx(0.5)


def test_kappa_mask_leaves_out_invalid_samples():
    a, b = pairs(20, 5, 10, 15)
    # add 7 samples that disagree; masked out they change nothing
    a2 = np.concatenate((a, np.ones(7, bool)))
    b2 = np.concatenate((b, np.zeros(7, bool)))
    valid = np.concatenate((np.ones(50, bool), np.zeros(7, bool)))
    assert cohen_kappa(a2, b2, valid) == pytest.approx(0.4)
    assert cohen_kappa(a2, b2) < 0.4


def test_kappa_edge_cases():
    # nothing left to compare: NaN
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa([1, 0], [1, 0], valid=[False, False]))
    # both all one and the same class: p_e = p_o = 1, kappa is 0/0 -> NaN (documented)
    assert math.isnan(cohen_kappa(np.ones(5, bool), np.ones(5, bool)))
    assert math.isnan(cohen_kappa([1, 0, 1], [1, 1, 1], valid=[True, False, True]))
    # one rater all one class, the other not: defined; agreement only by chance -> 0
    assert cohen_kappa(np.ones(4, bool), np.array([1, 1, 1, 0], bool)) == pytest.approx(0.0)
    # both one class each, but different classes: p_o = 0, p_e = 0 -> 0
    assert cohen_kappa(np.ones(3, bool), np.zeros(3, bool)) == 0.0
    with pytest.raises(ValueError):
        cohen_kappa([1, 0], [1])
    with pytest.raises(ValueError):
        cohen_kappa([1, 0], [1, 0], valid=[True])


def test_sample_labels_inclusive_bounds_and_overlaps():
    t = np.arange(12) * 0.1
    # events given in any order; [0.2, 0.4] includes both ends; [0.6, 1.0] contains [0.7, 0.8]
    ev = [[0.6, 1.0], [0.2, 0.4], [0.7, 0.8]]
    got = sample_labels(t, ev)
    want = np.zeros(12, bool)
    want[[2, 3, 4, 6, 7, 8, 9, 10]] = True
    np.testing.assert_array_equal(got, want)
    # a pyarrow table (detect()'s output) gives the same; unsorted samples and NaN times work
    tbl = pa.table({"t_start": [0.6, 0.2, 0.7], "t_end": [1.0, 0.4, 0.8]})
    np.testing.assert_array_equal(sample_labels(t, tbl), want)
    perm = np.random.default_rng(0).permutation(12)
    np.testing.assert_array_equal(sample_labels(t[perm], ev), want[perm])
    tn = t.copy()
    tn[3] = np.nan
    assert not sample_labels(tn, ev)[3]
    # a short event inside a long one must not hide the long one's later samples (running max of the ends)
    assert sample_labels([0.95], [[0.0, 1.0], [0.1, 0.2]])[0]


def test_sample_labels_empty_and_equal_to_a_loop():
    assert sample_labels(np.arange(3.0), []).tolist() == [False] * 3
    assert sample_labels(np.zeros(0), [[0, 1]]).size == 0
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 10, 500))
    starts = rng.uniform(0, 10, 30)
    ev = np.column_stack((starts, starts + rng.uniform(0, 0.8, 30)))
    loop = np.array([any(s <= ti <= e for s, e in ev) for ti in t])
    np.testing.assert_array_equal(sample_labels(t, ev), loop)


def test_detect_table_round_trip():
    """Labels from a detector's table mark exactly its samples [start_idx, end_idx)."""
    from streamgaze.gaze.fixations import detect

    t = np.arange(600) / 120.0
    x = np.where(t < 2.5, 0.3, 0.7) + np.random.default_rng(2).normal(0, 0.0005, t.size)
    y = np.full(t.size, 0.5)
    tbl = detect(t, x, y)
    lab = sample_labels(t, tbl)
    want = np.zeros(t.size, bool)
    for s, e in zip(tbl["start_idx"].to_pylist(), tbl["end_idx"].to_pylist()):
        want[s:e] = True
    np.testing.assert_array_equal(lab, want)
    assert cohen_kappa(lab, want) == 1.0


def test_lund2013_reader_and_kappas_on_files_in_its_documented_format(tmp_path):
    """bench/bench_agreement.py --lund reads Andersson et al.'s .mat layout (written here with scipy from the
    documented fields) and scores detectors and coders per category. A clean 500 Hz trace of fixations and
    saccades, labelled truthfully by coder MN and with one fixation relabelled by coder RA."""
    scipy_io = pytest.importorskip("scipy.io")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_agreement", Path(__file__).resolve().parents[1] / "bench" / "bench_agreement.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    rng = np.random.default_rng(3)
    x, y, lab = [], [], []
    px = 500.0
    for _ in range(12):  # 300 ms fixation, 30 ms saccade of 150 px
        x += list(px + rng.normal(0, 0.3, 150)); y += [400.0] * 150; lab += [1] * 150
        x += list(np.linspace(px, px + 150, 15)); y += [400.0] * 15; lab += [2] * 15
        px += 150 if px < 1200 else -900
    x[40:45] = y[40:45] = [0.0] * 5  # lost gaze: (0, 0)
    lab = np.array(lab)
    other = lab.copy()
    other[165:315] = 6  # RA leaves the second fixation undefined
    folder = tmp_path / "images"
    folder.mkdir()
    for coder, labels in (("MN", lab), ("RA", other)):
        pos = np.column_stack([np.arange(lab.size) * 2000.0, np.zeros(lab.size), np.zeros(lab.size),
                               x, y, labels])
        scipy_io.savemat(folder / f"TH34_img_Europe_labelled_{coder}.mat", {"ETdata": {
            "pos": pos, "sampFreq": 500.0, "screenDim": [0.38, 0.30], "screenRes": [1024, 768], "viewDist": 0.67}})
    trials = [bench.read_lund_mat(f) for f in sorted(folder.glob("*.mat"))]
    first = trials[0]
    assert (first["category"], first["trial"], first["coder"]) == ("images", "TH34_img_Europe_labelled", "MN")
    assert first["deg_per_px"] == pytest.approx(math.degrees(math.atan(0.38 / 1024 / 0.67)))
    assert np.isnan(first["x"][40:45]).all() and first["t"][1] == pytest.approx(0.002)
    k = bench.lund_kappas(trials, ["ivt"])["images"]
    assert k["n_trials"] == 1 and k["coders"] == pytest.approx(1.0)  # they differ only where RA is undefined
    assert k["ivt"] > 0.8  # at this scale the saccades run at > 100 deg/s, the fixations are still
