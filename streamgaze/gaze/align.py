"""Gaze aligned to video frames: one value per frame, the true mean of the samples that fall in it.

Gaze rates differ from video rates (EGTEA ~30 Hz gaze on 24 fps video, Ego4D ~200 Hz on 30 fps), so a
frame usually holds several samples. `frame_gaze` averages them exactly (``np.bincount`` with weights, no
loop). The StreamGaze reference averaged them pairwise as they arrived (``(old + new) / 2``), which weights
the last sample 1/2, the one before 1/4, ...; `pairwise_frame_gaze` reproduces that for parity checks.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def frame_index(t_s: np.ndarray, fps: float, t0: float = 0.0) -> np.ndarray:
    """Frame of each sample: floor((t - t0) * fps), with a tiny tolerance so t = k / fps lands in frame k."""
    return np.floor((np.asarray(t_s, np.float64) - t0) * fps + 1e-9).astype(np.int64)


def frame_gaze(t_s, x, y, valid=None, *, fps: float, n_frames: int | None = None, t0: float = 0.0) -> pa.Table:
    """Per-frame gaze: ``frame, t_s`` (frame start), ``x, y`` (mean of the frame's valid samples),
    ``n_samples`` (valid ones), ``valid`` (at least one), ``in_frame`` (the mean lies in [0, 1]^2),
    ``n_out`` (valid samples outside the image).

    Every frame 0..n_frames-1 gets a row; frames without a valid sample keep their row with ``valid = false``
    and NaN x, y. Samples before frame 0 or after the last frame are ignored.
    """
    t = np.asarray(t_s, np.float64)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    f = frame_index(np.where(np.isfinite(t), t, -1e18), fps, t0)
    if n_frames is None:
        n_frames = int(f[ok].max()) + 1 if ok.any() else 0
    ok &= (f >= 0) & (f < n_frames)
    fi = f[ok]
    n = np.bincount(fi, minlength=n_frames).astype(np.int64)
    sx = np.bincount(fi, weights=x[ok], minlength=n_frames)
    sy = np.bincount(fi, weights=y[ok], minlength=n_frames)
    with np.errstate(invalid="ignore"):
        out = ~((x[ok] >= 0) & (x[ok] <= 1) & (y[ok] >= 0) & (y[ok] <= 1))
    n_out = np.bincount(fi, weights=out, minlength=n_frames).astype(np.int64)
    has = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(has, sx / np.where(has, n, 1), np.nan)
        my = np.where(has, sy / np.where(has, n, 1), np.nan)
        inside = has & (mx >= 0) & (mx <= 1) & (my >= 0) & (my <= 1)
    frames = np.arange(n_frames, dtype=np.int64)
    return pa.table({
        "frame": frames, "t_s": t0 + frames / fps, "x": mx, "y": my, "n_samples": n,
        "valid": has, "in_frame": inside, "n_out": n_out,
    })


def pairwise_frame_gaze(t_s, x, y, *, fps: float, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's per-frame value: samples of a frame folded as ``v = (v + new) / 2`` in arrival order.

    Vectorised: in a frame of k samples the j-th (1-based) gets weight 2^-(k-j+1), the first 2^-(k-1).
    Returns ``frames, x, y`` for the frames that have samples (all samples count, as in the reference).
    """
    t = np.asarray(t_s, np.float64)
    f = frame_index(t, fps, t0)
    order = np.argsort(f, kind="stable")
    f, xs, ys = f[order], np.asarray(x, np.float64)[order], np.asarray(y, np.float64)[order]
    if f.size == 0:
        return f, xs, ys
    start = np.flatnonzero(np.concatenate(([True], f[1:] != f[:-1])))
    counts = np.diff(np.concatenate((start, [f.size])))
    j = np.arange(f.size) - np.repeat(start, counts)  # 0-based rank in the frame
    k = np.repeat(counts, counts)
    w = np.exp2(-(k - j).astype(np.float64))
    w[j == 0] = np.exp2(-(counts - 1).astype(np.float64))
    return f[start], np.add.reduceat(w * xs, start), np.add.reduceat(w * ys, start)
