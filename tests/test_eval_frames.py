"""Frame reading: one capture and two captures in parallel give the same frames at the requested indices, and
the per-task report rows are shared by the markdown and HTML tables."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamgaze.eval.frames import FrameReader, VideoContext, frame_indices
from streamgaze.gaze.overlay import GazeTrack

FPS = 24.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "grey.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    for i in range(120):  # the index in binary, one 80x80 white block per set bit: the frame shows its index
        f = np.zeros((480, 640, 3), np.uint8)
        for b in range(7):
            if i >> b & 1:
                f[200:280, 80 * b:80 * b + 80] = 255
        w.write(f)
    w.release()
    return path


def _index(img) -> int:
    grey = img if img.ndim == 2 else img.mean(axis=2)
    h, w = grey.shape
    k = w / 640  # blocks scale with the frame
    return sum(1 << b for b in range(7)
               if grey[int(220 * k):int(260 * k), int((80 * b + 20) * k):int((80 * b + 60) * k)].mean() > 128)


def _ctx(path):
    return VideoContext("v", path, FPS, 640, 480, 120, GazeTrack(np.zeros(0), np.zeros(0), np.zeros(0)))


@pytest.mark.parametrize("gap", [-1, None, 10**9])  # seek every frame, hybrid, grab through
def test_reader_returns_requested_frames(clip, gap):
    idx = frame_indices((0.0, 120 / FPS), FPS, 120, 16) + [3, 4, 5]
    r = FrameReader(clip)
    try:
        frames = r.read(idx, gap)
    finally:
        r.close()
    assert sorted(frames) == sorted(set(idx))
    for i, f in frames.items():
        assert _index(f) == i


def test_two_captures_same_jpegs_as_one(clip, monkeypatch):
    idx = frame_indices((0.0, 120 / FPS), FPS, 120, 16)
    out = {}
    for mode in ("1", "2"):
        monkeypatch.setenv("STREAMGAZE_FRAME_READERS", mode)
        v = _ctx(clip)
        try:
            out[mode] = v.jpegs(idx, overlay=False)
            raw = v.raw_frames(idx)
        finally:
            v.close()
        assert sorted(raw) == idx
    assert out["1"] == out["2"]
    for i, b in zip(idx, out["1"]):
        img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert img.shape == (384, 512) and _index(img) == i


def test_auto_mode_stays_single_when_busy(monkeypatch):
    from streamgaze.eval import frames

    monkeypatch.delenv("STREAMGAZE_FRAME_READERS", raising=False)
    assert frames._parallel_ok(2) is False  # another request of this process is being read
    monkeypatch.setenv("STREAMGAZE_FRAME_READERS", "2")
    assert frames._parallel_ok(5) is True


def test_task_rows_shared_by_md_and_html():
    from streamgaze.eval.report import _task_rows

    def task(acc, missing=0, chance=0.25):
        return {"accuracy": acc, "ci95": [0.1, 0.9], "missing": missing, "family": "past", "n": 8, "chance": chance}

    scores = {"a": {"tasks": {"t1": task(0.5, 2), "t2": task(None, chance=None)}},
              "b": {"tasks": {"t1": task(0.25)}}}
    rows = _task_rows(scores, ["a", "b"], ["t1", "t2"])
    assert [r.task for r in rows] == ["t1", "t2"]
    a, b = rows[0].cells
    assert (a.accuracy, a.interval, a.missing) == ("0.500", "[0.10, 0.90]", ", 2 missing") and b.missing == ""
    assert rows[1].cells == [None, None] and rows[1].chance == "" and rows[0].chance == "0.25"
