"""Fixation detection and the dwell-episode builder.

Two levels (formats.md, "head-mounted gaze"):

1. **Oculomotor fixations** from a detector plugin (`detect`; built-in ``ivt``), the eye still for >= 60 ms.
   Detectors work in *gaze-in-scene-image* coordinates; no head-motion compensation.
2. **Dwell episodes** (`build_episodes`): consecutive fixations merged when their centres are < ``merge_px``
   (pixels of the video frame) apart and the gap between them is < ``merge_gap_s``; episodes lasting at least
   ``min_episode_s`` are kept. Defaults are the StreamGaze reference's (50 px, 2 s, 2.5 s). An optional
   scene-consistency filter (the reference's step 1.5) drops episodes whose sampled frames' HSV histograms
   disagree.

A detector plugin (hook ``streamgaze_fixation_detectors`` -> ``{name: Detector}``) is any object with a
``defaults`` dict (every parameter it accepts, with its default) and
``__call__(t_s, x, y, valid, *, deg_per_unit, **params) -> (start_idx, end_idx)``: integer arrays of events,
end exclusive, in time order, non-overlapping. `detect` computes times, centroids and sample counts.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, StreamGazeError

#: Degrees per normalised unit assumed for normalised scene-camera coordinates when ``deg_per_unit`` is None:
#: the horizontal field of view of a Pupil Invisible / Ego4D scene camera (1088 px, ~82 deg; formats.md).
#: Vertical distances are scaled by ``aspect`` (height / width) so one degree is the same in x and y.
DEFAULT_DEG_PER_UNIT = 82.0

#: Episode-builder parameters and defaults (the StreamGaze reference's values).
EPISODE_DEFAULTS = {
    "merge_px": 90.0,  # neighbouring fixations closer than this (video pixels) belong to one dwell (ref: 50)
    "merge_gap_s": 2.0,  # ... when the gap between them is shorter than this
    "min_episode_s": 2.5,  # dwell episodes shorter than this are dropped
    "scene_check": False,  # reference's HSV-histogram scene-consistency filter (reads frames; off: see docs)
    "scene_min_corr": 0.9,  # each sampled frame's HSV histogram must correlate >= this with the first
    "scene_frames": 8,  # frames sampled per episode for the scene check
    "black_mean": 10.0,  # frames with mean intensity below this are "black" and ignored by the check
}


class Detector(Protocol):
    defaults: dict

    def __call__(self, t_s: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray, *, deg_per_unit: float, **params): ...


# ---------------------------------------------------------------------------------------------------------
# Shared numpy helpers (also used by detector plugins)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array (run-length encoding)."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = np.flatnonzero(m[1:] != m[:-1]) + 1  # one pass over bytes, no int8 copy
    up = d[m[d]]
    down = d[~m[d]]
    if m[0]:
        up = np.concatenate(([0], up))
    if m[-1]:
        down = np.concatenate((down, [m.size]))
    return up.astype(np.int64), down.astype(np.int64)


def speed(t: np.ndarray, x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-sample speed (units/s): central difference where both neighbours are usable, else one-sided.

    A neighbour is usable when it is ``ok`` and its time differs; samples with no usable neighbour get NaN.
    """
    n = t.size
    v = np.full(n, np.nan)
    if n < 2:
        return v
    with np.errstate(invalid="ignore", divide="ignore"):
        dt1 = np.diff(t)
        step_ok = ok[:-1] & ok[1:] & (dt1 > 0)
        fwd = np.where(step_ok, np.hypot(np.diff(x), np.diff(y)) / np.where(dt1 > 0, dt1, 1.0), np.nan)
        # fwd[i] is the speed between i and i+1
        v_fwd = np.concatenate((fwd, [np.nan]))  # sample i -> i+1
        v_bwd = np.concatenate(([np.nan], fwd))  # sample i-1 -> i
        if n >= 3:
            dt2 = t[2:] - t[:-2]
            c_ok = ok[2:] & ok[:-2] & ok[1:-1] & (dt2 > 0)
            cen = np.where(c_ok, np.hypot(x[2:] - x[:-2], y[2:] - y[:-2]) / np.where(dt2 > 0, dt2, 1.0), np.nan)
            v_cen = np.concatenate(([np.nan], cen, [np.nan]))
        else:
            v_cen = np.full(n, np.nan)
    v = np.where(np.isfinite(v_cen), v_cen, np.where(np.isfinite(v_fwd), v_fwd, v_bwd))
    v[~ok] = np.nan
    return v


#: Threads for the chunked passes (numpy releases the GIL inside each chunk's ufunc loops); inputs shorter
#: than `PARALLEL_MIN` run in the calling thread. Default 1 (no gain measured on a shared 2-core machine);
#: set STREAMGAZE_THREADS=2 to try.
THREADS = max(1, int(os.environ.get("STREAMGAZE_THREADS", "1") or 1))
PARALLEL_MIN = 1 << 20
_POOL = None


def parallel_ranges(fn, lo: int, hi: int, *, min_size: int = PARALLEL_MIN) -> list:
    """``[fn(a, b) for (a, b) in a split of [lo, hi)]``, one piece per thread (results in order)."""
    global _POOL
    k = THREADS if hi - lo >= min_size else 1
    if k == 1:
        return [fn(lo, hi)]
    cuts = np.linspace(lo, hi, k + 1).astype(np.int64)
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(THREADS, thread_name_prefix="streamgaze")
    futs = [_POOL.submit(fn, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    return [f.result() for f in futs]


#: Samples per chunk of the fused passes: a handful of float64 buffers of this size stay in L2 cache.
CHUNK = 1 << 14


def slow_mask(t, x, y, ok, threshold: float, *, aspect: float = 1.0, max_gap_s: float = np.inf):
    """I-VT core: ``speed < threshold`` per sample (same speed as `speed`), plus the time-gap positions.

    Returns ``(slow, gaps)``: gaps are the i with t[i+1] - t[i] > max_gap_s. The work is `ivt_pass` with
    ``valid = ok`` (a sample is usable when ``ok`` and t, x, y are finite).
    """
    slow, gaps, _, _ = ivt_pass(t, x, y, ok, threshold, aspect=aspect, max_gap_s=max_gap_s)
    return slow, gaps


def ivt_pass(t, x, y, valid, threshold: float, *, aspect: float = 1.0, max_gap_s: float = np.inf,
             want_range: bool = False):
    """One fused pass over t, x, y (float64, contiguous): usability, the I-VT speed test and time gaps.

    A sample is usable ("ok") when t, x, y are finite and ``valid`` (None: all valid). Per cache-sized chunk
    (`CHUNK` samples, ``out=`` buffers reused): ok from ``isfinite(x + y + t)`` (the few non-finite sums are
    re-checked on x, y, t themselves, so an overflowing sum of finite values is no false alarm), the not-ok
    positions, the optional pixel-range check, the central-difference test without square root or division
    (dx^2 + aspect^2 dy^2 < (threshold dt)^2; a NaN neighbour makes it false) and the gaps. Afterwards only
    the samples next to a not-ok one and the two ends get the one-sided difference (`_one_sided_fix`, from
    the not-ok positions alone). Returns ``(slow, gaps, bad, big)``: bad = sorted not-ok positions, big =
    max |x|, |y| over the ok samples (0 when none or without ``want_range``).
    """
    n = t.size
    v = None if valid is None else np.asarray(valid, bool)
    if n < 3:
        ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
        if v is not None:
            ok &= v
        slow = ok & (speed(t, x, y * aspect, ok) < threshold)
        gaps = np.flatnonzero(np.diff(t) > max_gap_s) if n else np.zeros(0, np.int64)
        big = max(np.abs(x[ok]).max(), np.abs(y[ok]).max()) if (want_range and ok.any()) else 0.0
        return slow, gaps.astype(np.int64), np.flatnonzero(~ok), float(big)
    thr2 = float(threshold) ** 2
    a2 = float(aspect) ** 2
    slow = np.empty(n, bool)

    def part(lo: int, hi: int):
        """Samples [lo, hi): one chunk at a time, all in cache. Returns (bad list, gap list, big)."""
        bads, gaps = [], []
        bx, by, bt = (np.empty(CHUNK) for _ in range(3))
        bo, bm = np.empty(CHUNK, bool), np.empty(CHUNK, bool)
        sub, mul, add, less, greater = np.subtract, np.multiply, np.add, np.less, np.greater
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, huge sums: handled, not errors
            big = _chunks(lo, hi, bads, gaps, bx, by, bt, bo, bm, sub, mul, add, less, greater)
        return bads, gaps, big

    def _chunks(lo, hi, bads, gaps, bx, by, bt, bo, bm, sub, mul, add, less, greater) -> float:
        big = 0.0
        for a in range(lo, hi, CHUNK):
            b = min(a + CHUNK, hi)
            m = b - a
            xa, ya, ta = x[a:b], y[a:b], t[a:b]
            # --- usability of [a, b)
            o, w, sm = bo[:m], bm[:m], bx[:m]
            add(xa, ya, out=sm)
            add(sm, ta, out=sm)
            np.isfinite(sm, out=o)
            if v is not None:
                np.logical_and(o, v[a:b], out=o)
            idx = None
            if not o.all():
                np.logical_not(o, out=w)
                idx = np.flatnonzero(w)
                fin = np.isfinite(xa[idx]) & np.isfinite(ya[idx]) & np.isfinite(ta[idx])
                if v is not None:
                    fin &= v[a:b][idx]
                if fin.any():  # finite values whose sum overflowed: usable after all
                    o[idx[fin]] = True
                    idx = idx[~fin]
                if idx.size:
                    bads.append(idx + a)
            if want_range:  # NaN-ignoring range first; the masked one only if a value beyond 2 is seen
                r = max(np.fmax.reduce(xa), -np.fmin.reduce(xa), np.fmax.reduce(ya), -np.fmin.reduce(ya))
                any_ok = idx is None or idx.size < m
                if r > 2.0 and any_ok:
                    xo, yo = xa[o], ya[o]
                    r = max(xo.max(), -xo.min(), yo.max(), -yo.min())
                if any_ok:
                    big = max(big, r)
            # --- central difference for the samples [c0, c1) of this chunk that have two neighbours
            c0, c1 = max(a, 1), min(b, n - 1)
            k = c1 - c0
            if k <= 0:
                continue
            dx, dy, dt, g = bx[:k], by[:k], bt[:k], bm[:k]
            sub(x[c0 + 1:c1 + 1], x[c0 - 1:c1 - 1], out=dx)
            mul(dx, dx, out=dx)
            sub(y[c0 + 1:c1 + 1], y[c0 - 1:c1 - 1], out=dy)
            mul(dy, dy, out=dy)
            if a2 != 1.0:
                mul(dy, a2, out=dy)
            add(dx, dy, out=dx)
            sub(t[c0 + 1:c1 + 1], t[c0:c1], out=dt)  # forward step, for gaps
            if np.fmax.reduce(dt) > max_gap_s:  # NaN-ignoring: a NaN time is never a gap
                greater(dt, max_gap_s, out=g)
                gaps.append(np.flatnonzero(g) + c0)
            sub(t[c0 + 1:c1 + 1], t[c0 - 1:c1 - 1], out=dt)
            mul(dt, dt, out=dt)
            mul(dt, thr2, out=dt)
            less(dx, dt, out=slow[c0:c1])
        return big

    bads, gaps, big = [], [], 0.0
    for bl, gl, bg in parallel_ranges(part, 0, n):
        bads.extend(bl)
        gaps.extend(gl)
        big = max(big, bg)
    if t[1] - t[0] > max_gap_s:
        gaps.insert(0, np.array([0]))
    bad = np.concatenate(bads).astype(np.int64) if bads else np.zeros(0, np.int64)
    _one_sided_fix(t, x, y, bad, slow, thr2, a2)
    gaps = np.concatenate(gaps).astype(np.int64) if gaps else np.zeros(0, np.int64)
    return slow, gaps, bad, float(big)


def _one_sided_fix(t, x, y, bad, slow, thr2: float, a2: float) -> None:
    """Set ``slow`` (in place) at the not-ok samples (False), at the ok samples next to one, and at the ends.

    Such a sample's central difference is unusable; it takes the forward step if usable (next sample ok, later
    time), else the backward one, else it is not slow (`speed`). Next to a not-ok b, that is simply: b - 1 gets
    the step (b-2, b-1), b + 1 the step (b+1, b+2), each usable when its other sample is ok (read from the
    sorted ``bad`` itself, no full-size mask). t, x, y are gathered once at [b-2, b-1, b+1, b+2] (neighbouring
    addresses, one cache line per row mostly) instead of one scattered pass per step and coordinate.
    """
    n = t.size

    def step_slow(ti, xi, yi, tj, xj, yj):
        with np.errstate(invalid="ignore", over="ignore"):
            dt = tj - ti
            dx, dy = xj - xi, yj - yi
            d2 = dx * dx + (dy * dy * a2 if a2 != 1.0 else dy * dy)
            return (dt > 0) & (d2 < thr2 * (dt * dt))

    if bad.size:
        slow[bad] = False
        prv = np.empty_like(bad)
        prv[0], prv[1:] = -3, bad[:-1]
        nxt = np.empty_like(bad)
        nxt[-1], nxt[:-1] = n + 3, bad[1:]
        win = bad[:, None] + np.array([-2, -1, 1, 2])
        np.clip(win, 0, n - 1, out=win)
        tw, xw, yw = t[win], x[win], y[win]
        st = step_slow(tw[:, 0], xw[:, 0], yw[:, 0], tw[:, 1], xw[:, 1], yw[:, 1])  # (b-2, b-1)
        left = (bad >= 1) & (prv != bad - 1)
        slow[bad[left] - 1] = (st & (bad >= 2) & (prv != bad - 2))[left]
        st = step_slow(tw[:, 2], xw[:, 2], yw[:, 2], tw[:, 3], xw[:, 3], yw[:, 3])  # (b+1, b+2)
        right = (bad + 1 < n) & (nxt != bad + 1)
        slow[bad[right] + 1] = (st & (bad + 2 < n) & (nxt != bad + 2))[right]
    # the ends: forward step at 0, backward at n - 1 (both samples ok)
    head, tail = bad[:2].tolist(), bad[-2:].tolist()
    slow[0] = 0 not in head and 1 not in head and bool(step_slow(t[0], x[0], y[0], t[1], x[1], y[1]))
    slow[n - 1] = (n - 1 not in tail and n - 2 not in tail
                   and bool(step_slow(t[n - 2], x[n - 2], y[n - 2], t[n - 1], x[n - 1], y[n - 1])))


# ---------------------------------------------------------------------------------------------------------
# Public API


def _convert(t_s, x, y, valid):
    """float64 contiguous t, x, y (copies only when needed) and valid as bool (or None); lengths checked."""
    t = np.ascontiguousarray(t_s, dtype=np.float64).ravel()
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    if not (t.size == x.size == y.size):
        raise StreamGazeError(f"t_s, x and y must have the same length (got {t.size}, {x.size}, {y.size})")
    v = None
    if valid is not None:
        v = np.asarray(valid, dtype=bool).ravel()
        if v.size != t.size:
            raise StreamGazeError(f"valid must have the same length as t_s (got {v.size}, {t.size})")
    return t, x, y, v


def _as_arrays(t_s, x, y, valid, *, want_range: bool = False):
    """float64 views (copies only when needed) and ``ok`` = finite t, x, y (and valid).

    ``ok`` is built in cache-sized chunks (one pass instead of five full-size temporaries). With
    ``want_range`` also returns max |x|, |y| over the ok samples (for the pixel check; 0 when none).
    """
    t, x, y, v = _convert(t_s, x, y, valid)
    n = t.size
    ok = np.empty(n, bool)
    step = 4 * CHUNK

    def part(lo: int, hi: int) -> float:
        tmp = np.empty(min(hi - lo, step), bool)
        big = 0.0
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            o, w = ok[a:b], tmp[:b - a]
            xa, ya = x[a:b], y[a:b]
            np.isfinite(xa, out=o)
            np.isfinite(ya, out=w)
            o &= w
            np.isfinite(t[a:b], out=w)
            o &= w
            if v is not None:
                o &= v[a:b]
            if want_range:  # NaN-ignoring range first; the masked one only if a value beyond 2 is seen
                r = max(np.fmax.reduce(xa), -np.fmin.reduce(xa), np.fmax.reduce(ya), -np.fmin.reduce(ya))
                if r > 2.0 and o.any():
                    xo, yo = xa[o], ya[o]
                    r = max(xo.max(), -xo.min(), yo.max(), -yo.min())
                big = max(big, r) if o.any() else big
        return big

    big = max(parallel_ranges(part, 0, n), default=0.0) if n else 0.0
    return t, x, y, ok, big


def get_detector(name: str):
    from .plugins import lookup

    return lookup("fixation_detectors", name).obj


def check_params(where: str, params: dict, allowed: dict) -> dict:
    """Reject unknown names (InputError naming the param) and values of the wrong kind."""
    out = {}
    for k, v in params.items():
        if k not in allowed:
            raise InputError(where, f"unknown parameter; known: {', '.join(sorted(allowed))}", column=k)
        d = allowed[k]
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise InputError(where, f"expected true or false, got {v!r}", column=k)
        elif isinstance(d, (int, float)) or d is None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise InputError(where, f"expected a number, got {v!r}", column=k)
            if isinstance(d, int) and not isinstance(d, bool) and float(v) != int(v):
                raise InputError(where, f"expected an integer, got {v!r}", column=k)
            if v < 0:
                raise InputError(where, f"must not be negative, got {v!r}", column=k)
        out[k] = v
    return out


def detect(t_s, x, y, valid=None, *, detector: str = "ivt", deg_per_unit: float | None = None, **params) -> pa.Table:
    """Detect fixations with a registered detector plugin; one row per fixation.

    ``x, y`` are normalised scene-camera coordinates (then ``deg_per_unit`` defaults to
    `DEFAULT_DEG_PER_UNIT`, 82 deg per frame width) or pixels (then pass ``deg_per_unit`` = degrees per pixel).
    Samples that are NaN or ``valid == False`` split fixations. Returns a ``pyarrow.Table`` with ``start_idx,
    end_idx`` (end exclusive), ``t_start`` (first sample's time), ``t_end`` (last sample's time), ``x, y``
    (centroid), ``n_samples``, ``duration_s``.
    """
    det = get_detector(detector)
    params = check_params("detect()", params, getattr(det, "defaults", {}))
    fused = getattr(det, "fused", None)
    if fused is not None:  # one pass computes usability, the range check and the detector's core
        t, xx, yy, v = _convert(t_s, x, y, valid)
        r = fused(t, xx, yy, v, deg_per_unit=float(deg_per_unit or DEFAULT_DEG_PER_UNIT),
                  want_range=deg_per_unit is None, **params)
        if r is not None:
            s, e, bad, big = r
            if deg_per_unit is None and big > 2.0:
                raise StreamGazeError("x, y look like pixels (values > 2): pass deg_per_unit (degrees per pixel)")
            s, e = np.asarray(s, np.int64), np.asarray(e, np.int64)
            return events_table(t, xx, yy, None, s, e, bad=bad)
    t, xx, yy, ok, big = _as_arrays(t_s, x, y, valid, want_range=deg_per_unit is None)
    if deg_per_unit is None:
        if big > 2.0:
            raise StreamGazeError("x, y look like pixels (values > 2): pass deg_per_unit (degrees per pixel)")
        deg_per_unit = DEFAULT_DEG_PER_UNIT
    if t.size == 0 or not ok.any():
        s = e = np.zeros(0, np.int64)
    else:
        s, e = det(t, xx, yy, ok, deg_per_unit=float(deg_per_unit), **params)
        s, e = np.asarray(s, np.int64), np.asarray(e, np.int64)
    return events_table(t, xx, yy, ok, s, e)


def ok_from_bad(n: int, bad: np.ndarray) -> np.ndarray:
    """The full-size usability mask from the sorted not-ok positions."""
    ok = np.ones(n, bool)
    ok[bad] = False
    return ok


def events_table(t, x, y, ok, s: np.ndarray, e: np.ndarray, *, bad: np.ndarray | None = None) -> pa.Table:
    """Times, centroids of the ok samples, and counts of events [s, e), built from numpy arrays.

    One ``np.add.reduceat`` per coordinate over the interleaved bounds (s0, e0, s1, e1, ..., s_last) of the
    slice [s0, e_last): the even entries are the events' sums, no cumulative sum and no copy of x or y.
    Not-ok samples inside events (only some detectors keep them, e.g. ``streamgaze_dwell``) are located
    from the few ``~ok`` positions (``bad``, sorted, when the caller has them; then ``ok`` may be None); only
    then are masked copies of the events' span made.
    """
    if not s.size:
        z = np.zeros(0)
        return _table(s, e, z, z, z, z, np.zeros(0, np.int64))
    lo, hi = int(s[0]), int(e[-1])
    bounds = np.empty(2 * s.size - 1, np.int64)
    bounds[0::2] = s - lo
    bounds[1::2] = e[:-1] - lo
    n = e - s
    xs, ys = x[lo:hi], y[lo:hi]
    if bad is None:
        bad = np.flatnonzero(~ok[lo:hi]) + lo
    else:
        bad = bad[np.searchsorted(bad, lo):np.searchsorted(bad, hi)]
    if bad.size:
        k = np.searchsorted(s, bad, side="right") - 1
        inside = (k >= 0) & (bad < e[np.maximum(k, 0)])
        if inside.any():
            n = n - np.bincount(k[inside], minlength=s.size)
            okl = ok[lo:hi] if ok is not None else ok_from_bad(hi - lo, bad - lo)
            xs, ys = np.where(okl, xs, 0.0), np.where(okl, ys, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nf = n.astype(np.float64)
        mx = np.add.reduceat(xs, bounds)[0::2] / nf
        my = np.add.reduceat(ys, bounds)[0::2] / nf
    return _table(s, e, t[s], t[e - 1], mx, my, n)


def _table(s, e, t0, t1, mx, my, n) -> pa.Table:
    return pa.table(
        {
            "start_idx": pa.array(np.asarray(s, np.int64)),
            "end_idx": pa.array(np.asarray(e, np.int64)),
            "t_start": pa.array(np.asarray(t0, np.float64)),
            "t_end": pa.array(np.asarray(t1, np.float64)),
            "x": pa.array(np.asarray(mx, np.float64)),
            "y": pa.array(np.asarray(my, np.float64)),
            "n_samples": pa.array(np.asarray(n, np.int64)),
            "duration_s": pa.array(np.asarray(t1, np.float64) - t0),
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Episode builder


def build_episodes(
    fixations: pa.Table,
    *,
    width: int | None = None,
    height: int | None = None,
    merge_px: float = EPISODE_DEFAULTS["merge_px"],
    merge_gap_s: float = EPISODE_DEFAULTS["merge_gap_s"],
    min_episode_s: float = EPISODE_DEFAULTS["min_episode_s"],
    scene_check: bool = EPISODE_DEFAULTS["scene_check"],
    scene_min_corr: float = EPISODE_DEFAULTS["scene_min_corr"],
    scene_frames: int = EPISODE_DEFAULTS["scene_frames"],
    black_mean: float = EPISODE_DEFAULTS["black_mean"],
    video_path: str | Path | None = None,
    fps: float | None = None,
) -> pa.Table:
    """Merge consecutive fixations into dwell episodes; returns ``episode_id, t_start, t_end, x, y, n_fixations``.

    Two neighbouring fixations (in time order) join when the distance between their centres, in pixels of a
    ``width`` x ``height`` frame, is < ``merge_px`` and the gap (next t_start - previous t_end) is
    < ``merge_gap_s``. Without a frame size, 640 x 640 is assumed (StreamGaze's videos are 640 px wide).
    An episode's centre is the sample-weighted mean of its fixations' centres. Episodes lasting
    >= ``min_episode_s`` are kept, numbered ``e1, e2, ...`` in time order; they never overlap.
    ``scene_check`` (needs ``video_path`` and ``fps``) applies `scene_consistent` to every kept episode.
    """
    f = fixations.sort_by("t_start") if fixations.num_rows else fixations
    t0 = np.asarray(f["t_start"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    t1 = np.asarray(f["t_end"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    x = np.asarray(f["x"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    y = np.asarray(f["y"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    w = np.asarray(f["n_samples"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    W = float(width) if width else 640.0
    H = float(height) if (width and height) else W
    if t0.size:
        link = (np.hypot(np.diff(x) * W, np.diff(y) * H) < merge_px) & ((t0[1:] - t1[:-1]) < merge_gap_s)
        group = np.concatenate(([0], np.cumsum(~link)))
        starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        ends = np.concatenate((starts[1:], [t0.size]))
        ws = np.add.reduceat(w, starts)
        ex = np.add.reduceat(w * x, starts) / np.where(ws > 0, ws, 1)
        ey = np.add.reduceat(w * y, starts) / np.where(ws > 0, ws, 1)
        et0 = t0[starts]
        et1 = np.maximum.reduceat(t1, starts)
        nf = ends - starts
        keep = (et1 - et0) >= min_episode_s - 1e-9
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    else:
        et0 = et1 = ex = ey = np.zeros(0)
        nf = np.zeros(0, np.int64)
    if scene_check and et0.size:
        if video_path is None or not fps:
            raise StreamGazeError("scene_check needs the video (path and fps) in the videos table")
        keep = np.array(
            [scene_consistent(video_path, fps, a, b, n_frames=int(scene_frames), min_corr=scene_min_corr,
                              black_mean=black_mean) for a, b in zip(et0, et1)],
            dtype=bool,
        )
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    return pa.table(
        {
            "episode_id": pa.array([f"e{i + 1}" for i in range(et0.size)], pa.string()),
            "t_start": pa.array(et0, pa.float64()),
            "t_end": pa.array(et1, pa.float64()),
            "x": pa.array(ex, pa.float64()),
            "y": pa.array(ey, pa.float64()),
            "n_fixations": pa.array(np.asarray(nf, np.int64), pa.int64()),
        }
    )


def scene_consistent(
    video_path: str | Path,
    fps: float,
    t_start: float,
    t_end: float,
    *,
    n_frames: int = 8,
    min_corr: float = 0.9,
    black_mean: float = 10.0,
) -> bool:
    """The reference's scene-consistency test for one episode.

    Reads ``n_frames`` frames evenly spaced over [t_start, t_end] by seeking; frames with mean intensity
    < ``black_mean`` are ignored; the HSV histogram (H 50 x S 60 bins) of every other frame must correlate
    >= ``min_corr`` with the first non-black one. An episode whose frames are all black (or unreadable) fails.
    """
    import cv2

    from .video import read_frames_at

    times = np.linspace(t_start, t_end, max(int(n_frames), 1))
    frames = read_frames_at(video_path, np.round(times * fps).astype(int))
    hists = []
    for fr in frames:
        if fr is None or float(fr.mean()) < black_mean:
            continue
        hsv = cv2.cvtColor(fr, cv2.COLOR_BGR2HSV)
        h = cv2.calcHist([hsv], [0, 1], None, [50, 60], [0, 180, 0, 256])
        cv2.normalize(h, h, 0, 1, cv2.NORM_MINMAX)
        hists.append(h)
    if not hists:
        return False
    return all(cv2.compareHist(hists[0], h, cv2.HISTCMP_CORREL) >= min_corr for h in hists[1:])


# ---------------------------------------------------------------------------------------------------------
# Scene motion (for the head-motion-compensated I-VT, ``ivt_flow``)

_FLOW_CACHE: dict = {}


def scene_flow(video_path: str | Path, *, width: int = 160, fps: float | None = None):
    """Global scene motion of a video: ``(fps, dx, dy)`` with ``dx[k], dy[k]`` the displacement of the scene
    content from frame k to k + 1 in normalised image units (fraction of the width / height).

    Frames are read in order, converted to grey and downscaled to ``width`` px; OpenCV's Farneback dense
    flow between consecutive frames, and its median over the image (robust to hands and moving objects),
    is the frame pair's motion. Cached per (path, size, mtime, width).
    """
    import cv2

    from .video import _capture

    path = Path(video_path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, int(width))
    if key not in _FLOW_CACHE:
        cap = _capture(path)
        try:
            vfps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            dxs, dys = [], []
            prev = None
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                h, w = frame.shape[:2]
                sw = max(16, min(int(width), w))
                sh = max(16, int(round(h * sw / w)))
                g = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (sw, sh), interpolation=cv2.INTER_AREA)
                if prev is not None:
                    f = cv2.calcOpticalFlowFarneback(prev, g, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                    dxs.append(float(np.median(f[..., 0])) / sw)
                    dys.append(float(np.median(f[..., 1])) / sh)
                prev = g
        finally:
            cap.release()
        _FLOW_CACHE[key] = (vfps, np.asarray(dxs), np.asarray(dys))
    vfps, dx, dy = _FLOW_CACHE[key]
    fps = fps or vfps
    if not fps or fps <= 0:
        raise StreamGazeError(f"{path}: cannot tell the video's frame rate; pass video_fps")
    return float(fps), dx, dy


# ---------------------------------------------------------------------------------------------------------
# Pipeline stage


def run_fixations(store_path: str | Path, detector: str = "ivt", params: dict | None = None) -> str:
    """Per video in the store: read gaze (ORDER BY t_s), detect fixations, build episodes, write both tables.

    ``params`` mixes detector parameters and episode-builder parameters (`EPISODE_DEFAULTS`); an unknown
    name is an `InputError`. Also clears the ``objects`` rows of the processed videos (their episode ids
    no longer hold). All videos are written in one transaction.
    """
    from .progress import stage
    from .store import open_store

    params = dict(params or {})
    det = get_detector(detector)
    det_defaults = dict(getattr(det, "defaults", {}))
    allowed = {**det_defaults, **EPISODE_DEFAULTS, "deg_per_unit": None}
    params = check_params("--param", params, allowed)
    ep_params = {k: v for k, v in params.items() if k in EPISODE_DEFAULTS}
    det_params = {k: v for k, v in params.items() if k in det_defaults}
    store_path = Path(store_path)
    if not store_path.exists():
        raise InputError(store_path, "no such store file")

    results = {}
    with open_store(store_path) as store:
        vids = [r[0] for r in store.con.execute("SELECT DISTINCT video_id FROM gaze ORDER BY video_id").fetchall()]
        if not vids:
            raise InputError(store_path, "no gaze in the store; run `streamgaze ingest` first")
        meta = {r["video_id"]: r for r in store.rows("SELECT video_id, path, fps, width, height FROM videos")}
        with stage("fixations", total=len(vids)) as advance:
            for vid in vids:
                g = _arrow(store, "SELECT t_s, x, y, valid FROM gaze WHERE video_id = ? ORDER BY t_s", [vid])
                m = meta.get(vid, {})
                W, H = m.get("width"), m.get("height")
                kw = dict(det_params)
                if "aspect" in det_defaults and "aspect" not in kw and W and H:
                    kw["aspect"] = H / W
                if "video_path" in det_defaults and not kw.get("video_path"):
                    if not m.get("path"):
                        raise InputError(store_path, f"detector {detector} needs the scene video of {vid!r}; "
                                         "ingest it with --video")
                    kw["video_path"] = m["path"]
                    if "video_fps" in det_defaults and not kw.get("video_fps") and m.get("fps"):
                        kw["video_fps"] = float(m["fps"])
                fx = detect(
                    g["t_s"].to_numpy(), _f(g["x"]), _f(g["y"]),
                    g["valid"].fill_null(False).to_numpy(zero_copy_only=False),
                    detector=detector, deg_per_unit=params.get("deg_per_unit"), **kw,
                )
                eps = build_episodes(fx, width=W, height=H, video_path=m.get("path"), fps=m.get("fps"), **ep_params)
                results[vid] = (fx, eps)
                advance(1)
        with store.transaction():
            for vid, (fx, eps) in results.items():
                n = fx.num_rows
                fix_rows = pa.table(
                    {
                        "video_id": pa.array([vid] * n, pa.string()),
                        "fixation_id": pa.array(np.arange(1, n + 1), pa.int32()),
                        "t_start": fx["t_start"], "t_end": fx["t_end"], "x": fx["x"], "y": fx["y"],
                        "n_samples": pc.cast(fx["n_samples"], pa.int32()),
                        "detector": pa.array([detector] * n, pa.string()),
                    }
                )
                ep_rows = eps.add_column(0, "video_id", pa.array([vid] * eps.num_rows, pa.string()))
                store.replace_video_rows("fixations", [vid], fix_rows)
                store.replace_video_rows("episodes", [vid], ep_rows)
                store.con.execute("DELETE FROM objects WHERE video_id = ?", [vid])
    n_fix = sum(fx.num_rows for fx, _ in results.values())
    n_ep = sum(e.num_rows for _, e in results.values())
    return f"fixations ({detector}): {n_fix} fixations, {n_ep} episodes over {len(results)} video(s)"


def _arrow(store, sql: str, params: list) -> pa.Table:
    rel = store.con.sql(sql, params=params)
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb >= 1.4 name first
    return fetch()


def _f(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
