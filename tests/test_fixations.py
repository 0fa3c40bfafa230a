"""Fixation detection (I-VT) on synthetic arrays, edge cases, the episode builder and the scene check."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import StreamGazeError
from streamgaze.gaze.fixations import build_episodes, detect, run_fixations, scene_consistent
from streamgaze.gaze.ingest import ingest


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def synthetic_scanpath(rng, hz=120.0, n_fix=40, noise=0.001):
    """Fixations (150-600 ms) joined by 30 ms saccades, Gaussian noise and NaN gaps; returns arrays + truth."""
    t_parts, x_parts, y_parts, truth = [], [], [], []
    t = 0.0
    pos = np.array([0.5, 0.5])
    for _ in range(n_fix):
        target = rng.uniform(0.1, 0.9, 2)
        k_sac = int(0.03 * hz)
        s = np.arange(1, k_sac + 1) / (k_sac + 1)
        path = pos + (target - pos) * s[:, None]
        t_parts.append(t + np.arange(k_sac) / hz)
        x_parts.append(path[:, 0]), y_parts.append(path[:, 1])
        t += k_sac / hz
        k = int(rng.uniform(0.15, 0.6) * hz)
        t_parts.append(t + np.arange(k) / hz)
        x_parts.append(target[0] + rng.normal(0, noise, k)), y_parts.append(target[1] + rng.normal(0, noise, k))
        truth.append((t, t + (k - 1) / hz, *target))
        t += k / hz
        pos = target
    return np.concatenate(t_parts), np.concatenate(x_parts), np.concatenate(y_parts), truth


def test_ivt_recovers_fixations():
    rng = np.random.default_rng(0)
    t, x, y, truth = synthetic_scanpath(rng)
    valid = np.ones(t.size, bool)
    valid[::97] = False  # sparse invalid samples
    x[:3] = np.nan  # NaN at the edges
    y[-2:] = np.nan
    fx = detect(t, x, y, valid).to_pylist()
    # every true fixation is covered by detected fixations with the right centre; no spurious ones
    for t0, t1, cx, cy in truth:
        inside = [f for f in fx if f["t_start"] >= t0 - 0.02 and f["t_end"] <= t1 + 0.02]
        assert inside, (t0, t1)
        assert sum(f["t_end"] - f["t_start"] for f in inside) >= 0.7 * (t1 - t0)
        for f in inside:
            assert abs(f["x"] - cx) < 0.005 and abs(f["y"] - cy) < 0.005
    assert all(any(f["t_start"] >= a - 0.02 and f["t_end"] <= b + 0.02 for a, b, *_ in truth) for f in fx)
    # invalid samples split fixations and never sit inside one
    bad = np.flatnonzero(~valid | ~np.isfinite(x) | ~np.isfinite(y))
    for f in fx:
        assert not np.any((bad >= f["start_idx"]) & (bad < f["end_idx"]))
        assert f["n_samples"] == f["end_idx"] - f["start_idx"]


def test_ivt_nan_gap_splits():
    t = np.arange(240) / 120
    x = np.full(240, 0.5)
    y = np.full(240, 0.5)
    x[100:130] = np.nan
    fx = detect(t, x, y)
    assert fx.num_rows == 2
    assert fx["end_idx"][0].as_py() <= 100 and fx["start_idx"][1].as_py() >= 130


@pytest.mark.parametrize(
    "t,x,y",
    [
        ([], [], []),
        ([0.0], [0.5], [0.5]),
        (np.arange(50) / 100, np.full(50, np.nan), np.full(50, np.nan)),
        (np.repeat(np.arange(50) / 50, 2), np.full(100, 0.5), np.full(100, 0.5)),  # duplicate timestamps
    ],
)
def test_edge_cases_do_not_crash(t, x, y):
    out = detect(np.asarray(t, float), np.asarray(x, float), np.asarray(y, float))
    assert {"start_idx", "end_idx", "t_start", "t_end", "x", "y", "n_samples"} <= set(out.column_names)
    assert np.all(np.isfinite(out["x"].to_numpy()))


@pytest.mark.parametrize("detector", ["ivt", "idt", "streamgaze_dwell"])
def test_decreasing_times_are_one_clear_error(detector):
    t = np.arange(100) / 100
    t[60] = 0.2  # earlier than sample 59
    with pytest.raises(StreamGazeError, match="sample 60 at 0.2 s"):
        detect(t, np.full(100, 0.5), np.full(100, 0.5), detector=detector)


@given(st.lists(st.one_of(st.sampled_from([np.nan]), st.integers(0, 6).map(float)), max_size=40),
       st.sampled_from([1, 2, 3, 5, 1 << 16]))
@settings(max_examples=300, deadline=None)
def test_first_decrease_is_the_first_time_below_an_earlier_one(times, chunk):
    """Against the definition (NaN times skipped), with chunks small enough to cut anywhere."""
    from streamgaze.gaze.fixations import detection as F

    t = np.array(times, float)
    want, latest = -1, -np.inf
    for i, v in enumerate(times):
        if v < latest:
            want = i
            break
        latest = v if v == v else latest
    old, F.CHUNK = F.CHUNK, chunk
    try:
        assert F.first_decrease(t) == want
    finally:
        F.CHUNK = old


def test_min_duration_and_samples():
    t = np.arange(24) / 30.0  # 30 Hz
    x = np.repeat([0.1, 0.5, 0.9, 0.3, 0.7, 0.2], 4)  # 4-sample holds -> 2 slow interior samples (33 ms)
    y = np.full(24, 0.5)
    # edge holds have 3 slow samples (one-sided speed at the ends), inner holds 2
    assert detect(t, x, y, min_samples=3, min_duration_ms=0).num_rows == 2  # samples stricter
    assert detect(t, x, y, min_samples=2, min_duration_ms=60).num_rows == 2  # ms stricter
    assert detect(t, x, y, min_samples=2, min_duration_ms=30).num_rows == 6


def test_units_threshold_and_pixels():
    t = np.arange(100) / 100
    x = np.full(100, 320.0)
    with pytest.raises(StreamGazeError, match="deg_per_unit"):
        detect(t, x, x)
    assert detect(t, x, x, deg_per_unit=0.08).num_rows == 1
    assert detect(t, x / 640, x / 640, threshold_units_s=0.5).num_rows == 1


def test_unknown_detector_and_param():
    with pytest.raises(StreamGazeError, match="ivt"):
        detect([0.0], [0.5], [0.5], detector="nope")
    with pytest.raises(StreamGazeError, match="bogus"):
        detect([0.0], [0.5], [0.5], bogus=1)


def fix_table(rows):
    cols = ["t_start", "t_end", "x", "y", "n_samples"]
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})


def test_episode_builder_merges_and_keeps():
    W, H = 640, 480
    rows = [
        (0.0, 1.0, 0.50, 0.50, 100),
        (1.1, 2.0, 0.50 + 40 / W, 0.50, 100),  # 40 px away -> merged with merge_px=50
        (2.2, 3.0, 0.50 + 80 / W, 0.50, 100),  # 40 px from the previous -> merged (chain)
        (3.1, 4.0, 0.9, 0.1, 100),  # far -> new group, too short alone
        (7.0, 8.0, 0.9, 0.1, 100),  # same place but 3 s gap -> separate, too short
        (8.5, 11.5, 0.2, 0.8, 100),  # alone 3.0 s -> kept
    ]
    ep = build_episodes(fix_table(rows), width=W, height=H, merge_px=50, merge_gap_s=2.0, min_episode_s=2.5)
    got = ep.to_pylist()
    assert [e["episode_id"] for e in got] == ["e1", "e2"]
    assert (got[0]["t_start"], got[0]["t_end"], got[0]["n_fixations"]) == (0.0, 3.0, 3)
    assert got[0]["x"] == pytest.approx(0.5 + 40 / W)
    assert (got[1]["t_start"], got[1]["t_end"]) == (8.5, 11.5)
    # tighter merge radius: nothing merges, only the 3 s fixation survives
    assert build_episodes(fix_table(rows), width=W, height=H, merge_px=30).num_rows == 1
    # episodes never overlap and are in time order
    t0, t1 = ep["t_start"].to_numpy(), ep["t_end"].to_numpy()
    assert np.all(t0[1:] >= t1[:-1])
    assert build_episodes(fix_table([]) if False else fix_table([(0, 0, 0, 0, 0)]).slice(0, 0)).num_rows == 0


def test_episode_merge_distance_is_in_pixels_of_a_640_px_wide_frame():
    """The same gaze on a 640 x 480 and a 1920 x 1440 video gives the same episodes; a distance of 60 px of the
    640 px frame (180 px of the 1920 px one) merges at merge_px=70, not at 50."""
    rows = [(0.0, 1.4, 0.5, 0.5, 100), (1.5, 3.0, 0.5 + 60 / 640, 0.5, 100)]
    for w, h in ((640, 480), (1920, 1440)):
        assert build_episodes(fix_table(rows), width=w, height=h, merge_px=70).num_rows == 1
        assert build_episodes(fix_table(rows), width=w, height=h, merge_px=50).num_rows == 0
    # vertical distances count in the frame's own proportion: 0.1 of a 480 px height is 48 px
    rows = [(0.0, 1.4, 0.5, 0.5, 100), (1.5, 3.0, 0.5, 0.6, 100)]
    assert build_episodes(fix_table(rows), width=1920, height=1440, merge_px=50).num_rows == 1
    assert build_episodes(fix_table(rows), width=1920, height=1440, merge_px=45).num_rows == 0


def _two_scene_video(path: Path, fps=10, seconds=6):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(fps * seconds):
        frame = np.zeros((48, 64, 3), np.uint8)
        if i < fps * 2:
            frame[:] = (0, 0, 200)  # red
            frame[:, :20] = (0, 200, 0)
        elif i < fps * 4:
            frame[:] = (200, 50, 0)  # blue
        # last 2 s black
        w.write(frame)
    w.release()


def test_scene_consistency(tmp_path):
    video = tmp_path / "v.mp4"
    _two_scene_video(video)
    assert scene_consistent(video, 10, 0.1, 1.8)
    assert not scene_consistent(video, 10, 0.5, 3.5)  # crosses a cut
    assert not scene_consistent(video, 10, 4.1, 5.8)  # all black
    assert scene_consistent(video, 10, 2.1, 5.8)  # black frames ignored
    rows = [(0.1, 1.8, 0.5, 0.5, 10), (2.5, 3.5, 0.1, 0.1, 10)]
    ep = build_episodes(fix_table(rows), width=64, height=48, min_episode_s=1.0, merge_px=10, scene_check=True, video_path=video, fps=10)
    assert ep.num_rows == 2
    rows = [(0.5, 3.5, 0.5, 0.5, 10)]
    ep = build_episodes(fix_table(rows), width=64, height=48, min_episode_s=1.0, scene_check=True, video_path=video, fps=10)
    assert ep.num_rows == 0


def _store_with_gaze(tmp_path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    t, x, y, _ = synthetic_scanpath(rng, n_fix=10)
    p = tmp_path / "g.csv"
    p.write_text("t_s,x,y\n" + "".join(f"{a:.6f},{b:.6f},{c:.6f}\n" for a, b, c in zip(t, x, y)))
    store = tmp_path / "s.duckdb"
    ingest(store, "generic-csv", [p], video_id="v")
    return store


def test_run_fixations_cli_and_bad_param(tmp_path):
    import hashlib

    store = _store_with_gaze(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["fixations", "--store", str(store), "--param", "min_episode_s=0.1", "--param", "merge_px=1"])
    assert res.exit_code == 0, res.output
    with open_store(store, read_only=True) as s:
        n_fix = s.con.execute("SELECT count(*) FROM fixations WHERE detector='ivt'").fetchone()[0]
        ids = [r[0] for r in s.con.execute("SELECT episode_id FROM episodes ORDER BY t_start").fetchall()]
    assert n_fix == 10 and ids == [f"e{i}" for i in range(1, 11)]
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    for args in (["--param", "bogus=3"], ["--param", "merge_px=abc"], ["--detector", "nope"]):
        res = runner.invoke(cli, ["fixations", "--store", str(store), *args])
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1
        assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert "bogus" in runner.invoke(cli, ["fixations", "--store", str(store), "--param", "bogus=3"]).output
    # rerun replaces, never duplicates
    run_fixations(store, params={"min_episode_s": 0.1, "merge_px": 1})
    with open_store(store, read_only=True) as s:
        assert s.con.execute("SELECT count(*) FROM fixations").fetchone()[0] == 10


def test_run_fixations_takes_the_scale_the_format_stored(tmp_path):
    """A video's gaze_units row (written at ingest by formats that know their camera) sets deg_per_unit and the
    aspect; without one the 82 deg assumption is used and said; --param deg_per_unit overrides the row."""
    def fixations(store):
        with open_store(store, read_only=True) as s:
            return s.rows("SELECT t_start, t_end, x, y FROM fixations ORDER BY t_start")

    plain = _store_with_gaze(tmp_path / "a")
    said = run_fixations(plain, params={"min_episode_s": 0.1})
    assert "1 video(s) without a known camera scale: 82 deg per frame width assumed" in said
    default_fix = fixations(plain)
    run_fixations(plain, params={"min_episode_s": 0.1, "deg_per_unit": 400.0, "aspect": 0.5})
    wide_fix = fixations(plain)
    assert wide_fix != default_fix  # the scale matters on this recording (saccades slower than 40 deg/s at 82)

    stored = _store_with_gaze(tmp_path / "b")
    with open_store(stored) as s, s.transaction():
        s.con.execute("INSERT INTO gaze_units VALUES ('v', 400.0, 0.5, 'test')")
    said = run_fixations(stored, params={"min_episode_s": 0.1})
    assert "assumed" not in said and fixations(stored) == wide_fix
    run_fixations(stored, params={"min_episode_s": 0.1, "deg_per_unit": 82.0, "aspect": 1.0})
    assert fixations(stored) == default_fix


synthetic = pytest.importorskip("streamgaze.demo.synthetic", reason="synthetic world not available")


def match_dwells(dwells, eps):
    """One-to-one >= 50 % overlap matching; returns precision, recall, F1."""

    def ov(a, b):
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))

    M = np.array([[ov(d, e) >= 0.5 * (d[1] - d[0]) for e in eps] for d in dwells], bool).reshape(len(dwells), len(eps))
    good_d = (M.sum(1) == 1) & np.array([M[:, M[i].argmax()].sum() == 1 if M[i].any() else False for i in range(len(dwells))], bool)
    tp = int(good_d.sum())
    p = tp / len(eps) if eps else 1.0
    r = tp / len(dwells) if dwells else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def test_synthetic_world_dwells(tmp_path):
    world = synthetic.make_world(tmp_path / "w", seed=2, minutes=0.75)
    store = tmp_path / "s.duckdb"
    ingest(store, "pupil-player", [world.root], video=world.video, video_id="syn")
    run_fixations(store)
    truth = json.loads(Path(world.truth).read_text())
    dwells = [(d["t_start"], d["t_end"]) for d in truth["dwells"]]
    with open_store(store, read_only=True) as s:
        eps = [(r["t_start"], r["t_end"]) for r in s.rows("SELECT * FROM episodes ORDER BY t_start")]
        video = s.rows("SELECT * FROM videos")[0]
    assert (video["width"], video["height"]) == (640, 480)
    p, r, f1 = match_dwells(dwells, eps)
    print(f"synthetic dwells: P={p:.3f} R={r:.3f} F1={f1:.3f} ({len(dwells)} dwells, {len(eps)} episodes)")
    assert f1 >= 0.9


# ---------------------------------------------------------------------------------------------------------
# Alignment, I-DT and the reference dwell preset


def test_frame_gaze_true_mean_vs_reference_pairwise():
    from streamgaze.gaze.align import frame_gaze, pairwise_frame_gaze

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 2, 200))
    x, y = rng.uniform(-0.1, 1.1, 200), rng.uniform(0, 1, 200)
    valid = rng.random(200) > 0.1
    g = frame_gaze(t, x, y, valid, fps=24, n_frames=60)
    assert g.num_rows == 60
    f = np.floor(t * 24 + 1e-9).astype(int)
    for k in range(60):
        m = (f == k) & valid
        row = g.slice(k, 1).to_pylist()[0]
        assert row["valid"] == bool(m.any()) and row["n_samples"] == m.sum()
        if m.any():
            assert row["x"] == pytest.approx(x[m].mean()) and row["y"] == pytest.approx(y[m].mean())
            assert row["n_out"] == int(((x[m] < 0) | (x[m] > 1)).sum())
        else:
            assert np.isnan(row["x"])  # missing kept, invalid
    # the reference's pairwise fold, naive loop vs the vectorised version
    frames, px, py = pairwise_frame_gaze(t, x, y, fps=24)
    ref = {}
    for ti, xi, yi in zip(t, x, y):
        k = int(np.floor(ti * 24 + 1e-9))
        ref[k] = ((ref[k][0] + xi) / 2, (ref[k][1] + yi) / 2) if k in ref else (xi, yi)
    assert list(frames) == sorted(ref)
    assert px == pytest.approx([ref[k][0] for k in frames]) and py == pytest.approx([ref[k][1] for k in frames])
    # and the pairwise value is not the mean when a frame holds 3+ samples
    many = [k for k in frames if ((f == k).sum() >= 3)]
    assert many and any(abs(px[list(frames).index(k)] - x[f == k].mean()) > 1e-6 for k in many)


def reference_dwell(t, xs, ys, radius, duration, gap):
    """The StreamGaze reference's extract_fixation_segments, as a plain loop (obviously correct)."""
    out, start, i = [], 0, 1
    while i < len(xs):
        dist = np.sqrt((xs[i] - xs[start]) ** 2 + (ys[i] - ys[start]) ** 2)
        if dist > radius:
            if t[i] - t[i - 1] <= gap:
                i += 1
                continue
            if t[i - 1] - t[start] >= duration:
                out.append((t[start], t[i - 1], np.mean(xs[start:i]), np.mean(ys[start:i])))
            start = i
        i += 1
    if len(xs) and t[-1] - t[start] >= duration:
        out.append((t[start], t[-1], np.mean(xs[start:]), np.mean(ys[start:])))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_streamgaze_dwell_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 900))
    t = np.cumsum(rng.choice([1 / 30, 1 / 30, 0.005, 0.04], n))  # uneven: some steps under gap_s
    seg = np.cumsum(rng.random(n) < 0.02)
    c = rng.uniform(0, 1, (seg[-1] + 1, 2))
    x = c[seg, 0] + rng.normal(0, 0.03, n)
    y = c[seg, 1] + rng.normal(0, 0.03, n)
    radius, dur, gap = rng.choice([0.05, 0.088, 0.15]), rng.choice([0.2, 0.5, 2.0]), rng.choice([0.01, 0.02])
    got = detect(t, x, y, detector="streamgaze_dwell", radius=float(radius), min_duration_s=float(dur), gap_s=float(gap))
    ref = reference_dwell(t, x, y, radius, dur, gap)
    assert got.num_rows == len(ref)
    for r, g in zip(ref, got.to_pylist()):
        assert (g["t_start"], g["t_end"]) == (r[0], r[1])
        assert (g["x"], g["y"]) == (pytest.approx(r[2]), pytest.approx(r[3]))


@pytest.mark.parametrize("seed", range(8))
def test_streamgaze_dwell_per_frame_matches_the_reference_pipeline(seed):
    """With video_fps, the preset is the reference's whole path: clip to [0, 1], fold each frame's tracked
    samples pairwise in arrival order, anchor dwell on the frames; checked against plain loops of both steps."""
    rng = np.random.default_rng(100 + seed)
    hz, fps = float(rng.choice([30.0, 60.0, 200.0])), float(rng.choice([24.0, 30.0, 24.46]))
    n = int(rng.integers(50, 3000))
    t = np.sort(rng.uniform(0, n / hz, n))
    seg = np.cumsum(rng.random(n) < 2 / hz)
    c = rng.uniform(-0.1, 1.1, (seg[-1] + 1, 2))  # some dwells partly outside the frame
    x, y = c[seg, 0] + rng.normal(0, 0.02, n), c[seg, 1] + rng.normal(0, 0.02, n)
    valid = rng.random(n) > 0.05
    radius, dur = float(rng.choice([0.088, 0.15])), float(rng.choice([0.5, 2.0]))
    got = detect(t, x, y, valid, detector="streamgaze_dwell", radius=radius, min_duration_s=dur, video_fps=fps)
    folded = {}
    for ti, xi, yi in zip(t[valid], np.clip(x[valid], 0, 1), np.clip(y[valid], 0, 1)):
        k = int(np.floor(ti * fps + 1e-9))
        folded[k] = ((folded[k][0] + xi) / 2, (folded[k][1] + yi) / 2) if k in folded else (xi, yi)
    frames = sorted(folded)
    ref = reference_dwell(np.array(frames) / fps, [folded[k][0] for k in frames], [folded[k][1] for k in frames],
                          radius, dur, 0.01)
    assert got.num_rows == len(ref)
    for r, g in zip(ref, got.to_pylist()):
        first, last = t[g["start_idx"]], t[g["end_idx"] - 1]
        assert (np.floor(first * fps + 1e-9), np.floor(last * fps + 1e-9)) == (round(r[0] * fps), round(r[1] * fps))
        inside = valid[g["start_idx"]:g["end_idx"]]
        assert inside[0] and inside[-1]  # the event starts and ends on tracked samples of its frames


def test_idt_recovers_fixations_and_edges():
    rng = np.random.default_rng(4)
    t, x, y, truth = synthetic_scanpath(rng, hz=120)
    t = t + rng.uniform(-0.001, 0.001, t.size)  # uneven timestamps
    t.sort()
    valid = np.ones(t.size, bool)
    valid[::97] = False
    fx = detect(t, x, y, valid, detector="idt").to_pylist()
    for t0, t1, cx, cy in truth:
        inside = [f for f in fx if f["t_start"] >= t0 - 0.03 and f["t_end"] <= t1 + 0.03]
        assert inside and sum(f["t_end"] - f["t_start"] for f in inside) >= 0.5 * (t1 - t0)
        assert all(abs(f["x"] - cx) < 0.01 for f in inside)
    bad = np.flatnonzero(~valid)
    assert all(not np.any((bad >= f["start_idx"]) & (bad < f["end_idx"])) for f in fx)
    for args in ([], [0.0], np.full(30, np.nan)):
        a = np.asarray(args, float)
        detect(np.arange(a.size) / 100, a, a, detector="idt")
        detect(np.arange(a.size) / 100, a, a, detector="streamgaze_dwell")


@pytest.mark.parametrize("seed", range(6))
def test_fast_slow_mask_equals_plain_speed(seed):
    from streamgaze.gaze.fixations import slow_mask, speed

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40000))
    t = np.cumsum(rng.choice([0.004, 0.005, 0.0, 0.2], n, p=[0.6, 0.37, 0.02, 0.01]))
    x, y = np.cumsum(rng.normal(0, 0.002, (2, n)), axis=1)
    x[rng.random(n) < 0.02] = np.nan
    ok = np.isfinite(x) & (rng.random(n) > 0.02)
    thr, asp = 0.3, float(rng.choice([1.0, 0.75]))
    slow, gaps = slow_mask(t, x, y, ok, thr, aspect=asp, max_gap_s=0.1)
    v = speed(t, x, y * asp, ok)
    assert np.array_equal(slow, ok & (v < thr))
    assert np.array_equal(gaps, np.flatnonzero(np.diff(t) > 0.1))
