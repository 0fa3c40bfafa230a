"""ivt_flow (head-motion compensation by the scene's optic flow) and the ivt gap-fill / merge options."""
from __future__ import annotations

import numpy as np
import pytest

from streamgaze.gaze.fixations import detect, scene_flow


def _true_scene_motion(truth):
    """Per frame pair: the median displacement of the fixtures' box centres (normalised), from the truth."""
    boxes = truth["frames"]["boxes"]
    fixtures = {o["id"] for o in truth["objects"] if o["fixture"]}
    n = truth["video"]["n_frames"]
    d = np.full((n - 1, 2), np.nan)
    cs = []
    for oid, bb in boxes.items():
        if oid not in fixtures:
            continue
        c = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] if b else [np.nan, np.nan] for b in bb])
        cs.append(np.diff(c, axis=0))
    d = np.nanmedian(np.stack(cs), axis=0)
    return d


def test_scene_flow_follows_the_camera_pan(small_world, small_truth):
    fps, dx, dy = scene_flow(small_world.video)
    assert fps == pytest.approx(small_truth["video"]["fps"])
    true = _true_scene_motion(small_truth)
    m = np.isfinite(true[:, 0])
    assert dx.size == true.shape[0]
    # the pan: per-frame motion agrees within a small fraction of a pixel-per-frame of 640 px
    err = np.abs(dx[m] - true[m, 0])
    assert np.median(err) < 0.5 / 640 and np.corrcoef(dx[m], true[m, 0])[0, 1] > 0.9


def test_ivt_flow_keeps_a_fixation_on_a_panning_scene(small_world, small_truth):
    """Gaze held on one scene point moves with the pan in the image: ivt at a low threshold breaks it up,
    ivt_flow (velocity relative to the scene) keeps it whole."""
    fps = small_truth["video"]["fps"]
    true = _true_scene_motion(small_truth)
    true = np.where(np.isfinite(true), true, 0.0)
    t = np.arange(0, 20, 1 / 120)
    ft = np.arange(true.shape[0] + 1) / fps
    x = 0.5 + np.interp(t, ft, np.concatenate(([0], np.cumsum(true[:, 0]))))
    y = 0.5 + np.interp(t, ft, np.concatenate(([0], np.cumsum(true[:, 1]))))
    rng = np.random.default_rng(0)
    x, y = x + rng.normal(0, 0.00003, t.size), y + rng.normal(0, 0.00003, t.size)
    speed = np.hypot(np.diff(x), np.diff(y)) / np.diff(t) * 82
    assert np.median(speed) > 2.0  # the scene really moves
    kw = dict(threshold_deg_s=1.5, max_gap_ms=100.0, aspect=0.75)
    plain = detect(t, x, y, detector="ivt", **kw)
    flow = detect(t, x, y, detector="ivt_flow", video_path=str(small_world.video), **kw)
    cover = lambda tb: sum(tb["n_samples"].to_pylist()) / t.size  # noqa: E731
    print(f"coverage: ivt_flow {cover(flow):.2f}, ivt {cover(plain):.2f}")
    assert cover(flow) > 0.85 and cover(plain) < 0.6
    with pytest.raises(Exception, match="video"):
        detect(t, x, y, detector="ivt_flow")


def test_ivt_flow_through_run_fixations(small_world, tmp_path):
    from streamgaze import open_store
    from streamgaze.gaze.fixations import run_fixations
    from streamgaze.gaze.ingest import ingest

    store = tmp_path / "s.duckdb"
    ingest(store, "pupil-player", [small_world.root], video=small_world.video, video_id="syn")
    assert "ivt_flow" in run_fixations(store, detector="ivt_flow")
    with open_store(store, read_only=True) as s:
        n = s.rows("SELECT count(*) AS n FROM fixations WHERE detector = 'ivt_flow'")[0]["n"]
    assert n > 20


def test_gap_fill_joins_across_a_short_dropout():
    t = np.arange(300) / 100  # 100 Hz
    x = np.full(300, 0.5) + np.random.default_rng(1).normal(0, 1e-4, 300)
    y = np.full(300, 0.5)
    x[100:106] = np.nan  # 70 ms between the bordering valid samples (99 and 106)
    x[200:215] = np.nan  # 160 ms: too long to fill
    assert detect(t, x, y).num_rows == 3
    fx = detect(t, x, y, gap_fill_ms=75.0)
    assert fx.num_rows == 2
    r = fx.to_pylist()[0]
    assert r["start_idx"] == 0 and r["end_idx"] == 200
    assert r["n_samples"] == 194  # filled samples are not counted
    assert np.isfinite(r["x"])


def test_merge_joins_close_fixations_only():
    hz = 200
    parts, t0 = [], 0.0
    # fixation A, 50 ms of fast noise, fixation B near A (0.3 deg), 50 ms, fixation C far (3 deg)
    cx = [0.5, 0.5 + 0.3 / 82, 0.5 + 3.3 / 82]
    xs = []
    for k, c in enumerate(cx):
        xs.append(np.full(60, c))
        if k < 2:
            xs.append(np.array([c + 0.05, c - 0.05] * 5))  # 10 samples = 50 ms of saccadic jitter
    x = np.concatenate(xs)
    t = np.arange(x.size) / hz
    y = np.full(x.size, 0.5)
    raw = detect(t, x, y)
    assert raw.num_rows == 3
    s, e = raw["start_idx"].to_pylist(), raw["end_idx"].to_pylist()
    fx = detect(t, x, y, merge_ms=75.0, merge_deg=0.5)
    assert fx["start_idx"].to_pylist() == [s[0], s[2]] and fx["end_idx"].to_pylist() == [e[1], e[2]]
    assert detect(t, x, y, merge_ms=40.0).num_rows == 3  # gap 55 ms > 40 ms


def test_streamgaze_dwell_in_run_fixations_folds_to_the_video_frames(small_world, tmp_path):
    """`streamgaze fixations --detector streamgaze_dwell` on a store with the video is the reference's whole
    path (per-frame fold at the video's rate); video_fps=0 keeps the raw 120 Hz samples, where the 10 ms flick
    tolerance skips every outlier and segments run on."""
    from streamgaze import open_store
    from streamgaze.gaze.fixations import run_fixations
    from streamgaze.gaze.ingest import ingest

    store = tmp_path / "s.duckdb"
    ingest(store, "pupil-player", [small_world.root], video=small_world.video, video_id="syn")
    said = run_fixations(store, detector="streamgaze_dwell", params={"min_episode_s": 0.1})
    assert "assumed" not in said  # the preset's radius is in normalised units

    def table():
        with open_store(store, read_only=True) as s:
            g = s.rows("SELECT t_s, x, y, valid FROM gaze ORDER BY t_s")
            fx = s.rows("SELECT t_start, t_end FROM fixations ORDER BY t_start")
            fps = s.rows("SELECT fps FROM videos")[0]["fps"]  # from the world timestamps: 23.9998
        return g, [(r["t_start"], r["t_end"]) for r in fx], fps

    g, per_frame, fps = table()
    t, x, y = (np.array([r[c] for r in g], np.float64) for c in ("t_s", "x", "y"))
    v = np.array([r["valid"] for r in g], bool)
    want = detect(t, x, y, v, detector="streamgaze_dwell", video_fps=fps)
    assert per_frame == list(zip(want["t_start"].to_pylist(), want["t_end"].to_pylist()))
    run_fixations(store, detector="streamgaze_dwell", params={"min_episode_s": 0.1, "video_fps": 0.0})
    _, raw, _ = table()
    assert len(raw) < len(per_frame)
