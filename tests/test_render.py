"""Overlay rendering: one output per video, gaze dot where the store says, fast vectorised lookup."""
from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.gaze.overlay import GazeTrack, draw_gaze, gaze_at, overlay_frame, render_overlay
from streamgaze.store import open_store

FPS, N, W, H = 10.0, 30, 160, 120


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for _ in range(N):
        writer.write(np.full((H, W, 3), 40, dtype=np.uint8))
    writer.release()
    t = np.arange(0, N / FPS, 1 / 60)
    x = np.where(t < 1.5, 0.25, 0.75)
    path = tmp_path / "store.duckdb"
    with open_store(path) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": ["clip"], "dataset": ["t"], "path": ["clip.mp4"], "fps": [FPS],
                                      "width": [W], "height": [H], "duration_s": [N / FPS]}))
        st.insert("gaze", pa.table({"video_id": ["clip"] * len(t), "t_s": t, "x": x, "y": np.full(len(t), 0.5),
                                    "valid": ~((t > 2.2) & (t < 2.6))}))
    return path


def test_gaze_at_latest_sample_at_or_before_within_tolerance():
    gt = np.array([0.0, 1.0, 2.0])
    x, y, found = gaze_at(gt, np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5, 0.6]),
                          [0.05, 0.6, 1.45, 1.0, 5.0, -0.1], 0.5)
    # 0.6 is nearer the sample at 1.0, which comes after it: never shown; 1.0 takes its own sample
    assert found.tolist() == [True, False, True, True, False, False]
    assert x[[0, 2, 3]].tolist() == [0.1, 0.2, 0.2] and np.isnan(x[1]) and np.isnan(x[4])


def test_draw_gaze_marks():
    frame = np.zeros((100, 200, 3), np.uint8)
    draw_gaze(frame, 0.5, 0.5)
    assert tuple(frame[50, 100]) == (0, 255, 0)
    r = round(0.12 * 200)
    assert frame[50, 100 + r, 2] > 100  # red circle at the FOV radius
    blank = np.zeros((10, 10, 3), np.uint8)
    assert not draw_gaze(blank, float("nan"), 0.5).any()


def test_render_overlay(store, tmp_path):
    (out,) = render_overlay(store, tmp_path / "out", scale=1.0)
    assert out.name == "clip_overlay.mp4"
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == N
    green = lambda f, x: f[H // 2, int(x * W), 1] > 150 and f[H // 2, int(x * W), 2] < 120  # noqa: E731
    assert green(frames[5], 0.25) and not green(frames[5], 0.75)
    assert green(frames[20], 0.75)
    assert not green(frames[24], 0.75)  # 2.4 s: gaze invalid, no dot
    with pytest.raises(InputError):
        render_overlay(store, tmp_path / "out", video_id="nope")
    result = CliRunner().invoke(cli, ["render", "overlay", "--store", str(store), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 0 and "clip_overlay.mp4" in result.output


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    return frames, cap.get(cv2.CAP_PROP_FPS)


def test_render_default_half_size_and_fewer_fps(store, tmp_path):
    (out,) = render_overlay(store, tmp_path / "half")
    frames, fps = _read_all(out)
    assert len(frames) == N and frames[0].shape[:2] == (H // 2, W // 2) and fps == FPS
    (out,) = render_overlay(store, tmp_path / "slow", scale=1.0, fps=5.0)
    frames, fps = _read_all(out)
    assert len(frames) == N // 2 and fps == 5.0
    green = lambda f, x: f[H // 2, int(x * W), 1] > 150 and f[H // 2, int(x * W), 2] < 120  # noqa: E731
    assert green(frames[2], 0.25) and green(frames[10], 0.75)  # source frames 4 and 20
    result = CliRunner().invoke(cli, ["render", "overlay", "--store", str(store), "--out", str(tmp_path / "o3"), "--fps", "5", "--scale", "0.5"])
    assert result.exit_code == 0, result.output


def test_eval_overlay_draws_like_render(store):
    """`--gaze-prompt overlay` frames are `overlay_frame` (= draw_gaze at the frame's gaze) of the resized frame."""
    from streamgaze.eval.frames import VideoContext

    with open_store(store, read_only=True) as st:
        ctx = VideoContext.load(st, "clip")
        track = GazeTrack.from_store(st, "clip")
    try:
        for idx in (5, 20, 24):
            raw = ctx.frame(idx, overlay=False)
            expected = overlay_frame(raw.copy(), track, idx, FPS)
            x, y, found = track.at([idx / FPS], 1 / FPS)
            assert np.array_equal(ctx.frame(idx, overlay=True), expected)
            assert np.array_equal(expected, draw_gaze(raw.copy(), x[0], y[0]))
    finally:
        ctx.close()
