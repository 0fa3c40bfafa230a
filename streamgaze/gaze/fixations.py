"""Fixation detection and the dwell-episode builder.

Two levels (formats.md, "head-mounted gaze"):

1. **Oculomotor fixations** from a detector plugin (`detect`; built-in ``ivt``), the eye still for >= 60 ms.
   Detectors work in *gaze-in-scene-image* coordinates (``ivt_flow`` subtracts the scene's own motion).
2. **Dwell episodes** (`build_episodes`): consecutive fixations merged when their centres are < ``merge_px``
   pixels apart (pixel-equivalents of a 640 px-wide frame, the reference's, so one value fits every camera) and
   the gap between them is < ``merge_gap_s``; episodes lasting at least ``min_episode_s`` are kept (2 s and 2.5 s
   as in the reference; 90 px where the reference merges its 2-s dwells at 50 px: docs/gaze.md, "Dwell
   episodes"). An optional scene-consistency filter (the reference's step 1.5) drops episodes whose sampled
   frames' HSV histograms disagree.

A detector plugin (hook ``streamgaze_fixation_detectors`` -> ``{name: Detector}``) is any object with a
``defaults`` dict (every parameter it accepts, with its default), optionally ``uses_degrees = False`` (its
parameters are in normalised units, so `run_fixations` does not warn about an assumed angular scale), and
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

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.gaze.geometry import DEFAULT_DEG_PER_UNIT


#: Width of the frame `build_episodes` measures ``merge_px`` in (the reference's videos are 640 px wide).
MERGE_FRAME_WIDTH = 640.0

#: Episode-builder parameters and defaults (docs/gaze.md, "Dwell episodes", gives the reasons).
EPISODE_DEFAULTS = {
    # neighbouring fixations closer than this (px of a 640 px-wide frame) belong to one dwell; the reference
    # merges its >= 2 s anchor dwells at 50, oculomotor fixations need room for refixations within an object
    "merge_px": 90.0,
    "merge_gap_s": 2.0,  # ... when the gap between them is shorter than this
    "min_episode_s": 2.5,  # dwell episodes shorter than this are dropped
    "scene_check": False,  # the reference's HSV-histogram scene-consistency filter (reads frames; see docs)
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
    """Start and end (exclusive) indices of the runs of True in a boolean array (run-length encoding).

    The boundaries (positions where the value changes, plus 0 / n when the mask starts / ends True)
    alternate start, end, start, ...: every other one, no gathers of the mask.
    """
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = np.not_equal(m[1:], m[:-1]).nonzero()[0]  # one pass over bytes, no int8 copy
    d += 1
    if m[0] or m[-1]:
        d = np.concatenate(([0] if m[0] else [], d, [m.size] if m[-1] else [])).astype(np.int64)
    return d[0::2], d[1::2]


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


#: Threads for the chunked numpy passes (numpy releases the GIL inside each chunk's ufunc loops); inputs shorter
#: than `PARALLEL_MIN` run in the calling thread. Default 1 (no gain measured on a shared 2-core machine: the
#: passes wait on memory). ``STREAMGAZE_THREADS=N`` sets this and `COMPILED_THREADS`.
_THREADS_SET = int(os.environ.get("STREAMGAZE_THREADS", "0") or 0)
THREADS = max(1, _THREADS_SET or 1)
#: Threads for the compiled I-VT loop (`compiled_ivt`), which is compute-bound: one per core by default, at most
#: 8 (1.7x wall on 2 cores, docs/gaze.md).
COMPILED_THREADS = max(1, _THREADS_SET or min(os.cpu_count() or 1, 8))


def compiled_threads() -> int:
    """Threads the compiled loop uses now (read at call time, so a caller that changes `COMPILED_THREADS` is heard)."""
    return COMPILED_THREADS
PARALLEL_MIN = 1 << 20
_POOL = None


def parallel_ranges(fn, lo: int, hi: int, *, min_size: int | None = None, threads: int | None = None) -> list:
    """``[fn(a, b) for (a, b) in a split of [lo, hi)]``, one piece per thread (``threads``, default `THREADS`;
    results in order); inputs shorter than ``min_size`` (default `PARALLEL_MIN`) in one piece."""
    global _POOL
    want = THREADS if threads is None else threads
    k = want if hi - lo >= (PARALLEL_MIN if min_size is None else min_size) else 1
    if k == 1:
        return [fn(lo, hi)]
    cuts = _part_cuts(hi, lo, k)
    if _POOL is None or _POOL._max_workers < k:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(k, thread_name_prefix="streamgaze")
    futs = [_POOL.submit(fn, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    return [f.result() for f in futs]


def _part_cuts(hi: int, lo: int = 0, k: int | None = None) -> list:
    """Where `parallel_ranges` splits [lo, hi) (k pieces; default: as many as it will use)."""
    if k is None:
        k = THREADS if hi - lo >= PARALLEL_MIN else 1
    return np.linspace(lo, hi, k + 1).astype(np.int64).tolist()


def compiled_ivt():
    """The compiled I-VT loop (module `streamgaze.gaze.ivt_loop`, built from Cython at install), or None when it was
    not built (no C compiler) or is switched off with ``STREAMGAZE_COMPILED=0``; then `ivt_pass` does the work."""
    if os.environ.get("STREAMGAZE_COMPILED", "1") == "0":
        return None
    try:
        from streamgaze.gaze import ivt_loop
    except ImportError:
        return None
    return ivt_loop


#: Samples per chunk of the fused passes: a handful of float64 buffers of this size stay in L2 / L3 cache
#: (64 k measured ~10 % faster than 16 k on 10 M samples: half the per-chunk numpy calls, same memory traffic).
CHUNK = 1 << 16
#: `ivt_pass` fixes the neighbours of not-ok samples every this many samples, while they are still in cache
#: (gathers from the full arrays would wait on memory for every not-ok sample).
FIX_EVERY = 1 << 18


def slow_mask(t, x, y, ok, threshold: float, *, aspect: float = 1.0, max_gap_s: float = np.inf, half_span: int = 1):
    """I-VT core: ``speed < threshold`` per sample, plus the time-gap positions.

    Returns ``(slow, gaps)``: gaps are the i with t[i+1] - t[i] > max_gap_s. ``half_span`` = 1 (adjacent samples,
    the same speed as `speed`) is `ivt_pass` with ``valid = ok`` (a sample is usable when ``ok`` and t, x, y are
    finite); wider spans are `span_slow_mask`.
    """
    if half_span > 1:
        ok = np.asarray(ok, bool) & np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
        with np.errstate(invalid="ignore"):
            gaps = np.flatnonzero(np.diff(t) > max_gap_s)
        return span_slow_mask(t, x, y, ok, threshold, half_span, aspect=aspect), gaps
    slow, gaps, _, _ = ivt_pass(t, x, y, ok, threshold, aspect=aspect, max_gap_s=max_gap_s)
    return slow, gaps


def span_slow_mask(t, x, y, ok, threshold: float, half_span: int, *, aspect: float = 1.0) -> np.ndarray:
    """The I-VT speed test over a window of samples (Tobii's I-VT takes the speed over 20 ms, not between
    neighbours, so 300-1000 Hz noise does not swamp it): the speed at a usable sample i is taken between the ends
    j1 < j2 of the span [i - h, i + h] (h = ``half_span``), cut short before the nearest samples that are not
    usable (``ok`` false) and at the ends of the data. Slow: dx^2 + a^2 dy^2 < (threshold dt)^2 between j1 and j2;
    a span cut short (one-sided) also needs t[j2] > t[j1]; a sample with no usable neighbour is not slow. With
    h = 1 this is `ivt_pass`'s rule (central difference, else the forward step, else the backward one).

    The numpy fallback of the compiled loop: the whole-span test on shifted slices for every sample, then the
    full rule (`_cut_span_slow`) for the few samples whose span meets a not-usable sample or the data's ends,
    found from a running count of the not-usable samples."""
    n, h = t.size, int(half_span)
    thr2, a2 = float(threshold) ** 2, float(aspect) ** 2
    slow = np.zeros(n, bool)
    whole = np.zeros(n, bool)  # the span [i - h, i + h] exists and is all usable
    if n > 2 * h:
        with np.errstate(invalid="ignore", over="ignore"):
            dx, dy, dt = x[2 * h:] - x[:-2 * h], y[2 * h:] - y[:-2 * h], t[2 * h:] - t[:-2 * h]
            d2 = dy * dy
            if aspect != 1.0:
                d2 *= a2
            d2 += dx * dx
            slow[h:n - h] = d2 < dt * dt * thr2
        unusable = np.concatenate(([0], np.cumsum(~ok, dtype=np.int64)))  # not-usable samples in [0, k)
        whole[h:n - h] = unusable[2 * h + 1:] == unusable[:-2 * h - 1]
    cut = np.flatnonzero(~whole & ok)
    slow[cut] = _cut_span_slow(t, x, y, ok, cut, h, thr2, a2)
    return ok & slow


def _cut_span_slow(t, x, y, ok, i, h: int, thr2: float, a2: float) -> np.ndarray:
    """`span_slow_mask`'s full rule at the samples ``i``: the span's ends found from the nearest not-usable
    samples either side (binary search in their sorted positions)."""
    n = t.size
    bad = np.flatnonzero(~ok)
    before = np.searchsorted(bad, i)  # not-usable samples before i
    prev_bad = np.where(before > 0, bad[np.maximum(before - 1, 0)] if bad.size else -1, -1)
    after = np.searchsorted(bad, i, side="right")  # ... up to and with i
    next_bad = np.where(after < bad.size, bad[np.minimum(after, bad.size - 1)] if bad.size else n, n)
    j1 = np.maximum(np.maximum(i - h, prev_bad + 1), 0)
    j2 = np.minimum(np.minimum(i + h, next_bad - 1), n - 1)
    full = (j1 == i - h) & (j2 == i + h)
    with np.errstate(invalid="ignore", over="ignore"):
        dx, dy, dt = x[j2] - x[j1], y[j2] - y[j1], t[j2] - t[j1]
        d2 = dy * dy
        if a2 != 1.0:
            d2 = d2 * a2
        d2 = dx * dx + d2
        slow = np.where(full, d2 < dt * dt * thr2, (dt > 0) & (d2 < thr2 * (dt * dt)))
    return (j2 > j1) & slow


def ivt_pass(t, x, y, valid, threshold: float, *, aspect: float = 1.0, max_gap_s: float = np.inf,
             want_range: bool = False):
    """One fused pass over t, x, y (float64, contiguous): usability, the I-VT speed test and time gaps.

    A sample is usable ("ok") when t, x, y are finite and ``valid`` (None: all valid). Per cache-sized chunk
    (`CHUNK` samples, ``out=`` buffers reused): ok from ``isfinite(x + y + t)`` (the few non-finite sums are
    re-checked on x, y, t themselves when infinite, so an overflowing sum of finite values is no false alarm),
    the not-ok positions, the optional pixel-range check (`_ok_range`), the central-difference test without
    square root or division (dx^2 + aspect^2 dy^2 < (threshold dt)^2; a NaN neighbour makes it false) and the
    gaps. Every `FIX_EVERY` samples, while they are still in cache, the samples next to the not-ok ones seen
    so far get the one-sided difference (`_fix_next_to_bad`, from the not-ok positions alone); the two ends
    and the not-ok samples next to a cut between threads' parts are fixed at the end. Returns ``(slow, gaps,
    bad, big)``: bad = sorted not-ok positions, big = max |x|, |y| over the ok samples (0 when none or without
    ``want_range``; values of not-ok samples may count while it is <= 2).
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
        fixed = 0  # bads[:fixed] have had their neighbours fixed
        prev = lo - 1  # the last fixed not-ok sample (before it: a stand-in, see _fix_next_to_bad)
        flushed = lo
        for a in range(lo, hi, CHUNK):
            if a - flushed >= FIX_EVERY and len(bads) > fixed:
                fixed, prev = _fix_pending(bads, fixed, prev, lo, a)
                flushed = a
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
                idx = w.nonzero()[0]
                overflow = np.isinf(sm[idx])  # a NaN sum always means a non-finite x, y or t
                if overflow.any():
                    idx = _recheck_overflow(idx, overflow, xa, ya, ta, None if v is None else v[a:b], o)
                if idx.size:
                    bads.append(idx + a)
            if want_range and (idx is None or idx.size < m):
                big = max(big, _ok_range(xa, ya, o, idx))
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
            if not np.maximum.reduce(dt) <= max_gap_s:  # (NaN: look closer; a NaN time is never a gap)
                greater(dt, max_gap_s, out=g)
                gaps.append(np.flatnonzero(g) + c0)
            sub(t[c0 + 1:c1 + 1], t[c0 - 1:c1 - 1], out=dt)
            mul(dt, dt, out=dt)
            mul(dt, thr2, out=dt)
            less(dx, dt, out=slow[c0:c1])
        if hi == n and len(bads) > fixed:  # the last part's tail: sample n counts as not ok
            _fix_next_to_bad(t, x, y, _cat(bads[fixed:]), prev, n, slow, thr2, a2, lo)
        elif len(bads) > fixed:
            _fix_pending(bads, fixed, prev, lo, hi)
        return big

    def _fix_pending(bads, fixed, prev, lo, done):
        """Fix the neighbours of the pending not-ok samples b with b + 2 < done (slow and usability known
        up to ``done``), while t, x, y there are still in cache. Returns the new (fixed, prev)."""
        pend = _cat(bads[fixed:])
        k = int(np.searchsorted(pend, done - 2))
        if k:
            _fix_next_to_bad(t, x, y, pend[:k], prev, done, slow, thr2, a2, lo)
            prev = int(pend[k - 1])
        rest = pend[k:]
        bads[fixed:] = [pend[:k], rest] if rest.size else [pend[:k]]
        return fixed + 1, prev

    bads, gaps, big = [], [], 0.0
    for bl, gl, bg in parallel_ranges(part, 0, n):
        bads.extend(bl)
        gaps.extend(gl)
        big = max(big, bg)
    if t[1] - t[0] > max_gap_s:
        gaps.insert(0, np.array([0]))
    bad = _cat(bads)
    # the not-ok samples next to a cut between two parts (their neighbours' usability is in the other part)
    for cut in _part_cuts(n)[1:-1]:
        k0, k1 = np.searchsorted(bad, [cut - 2, cut + 2])
        if k1 > k0:
            _fix_next_to_bad(t, x, y, bad[k0:k1], bad[k0 - 1] if k0 else -1, bad[k1] if k1 < bad.size else n,
                             slow, thr2, a2, 0)
    _fix_ends(t, x, y, bad, slow, thr2, a2)
    gaps = np.concatenate(gaps).astype(np.int64) if gaps else np.zeros(0, np.int64)
    return slow, gaps, bad, float(big)


def _recheck_overflow(idx, overflow, xa, ya, ta, va, o):
    """The not-ok positions ``idx`` of a chunk without those whose infinite sum x + y + t came from finite
    values (overflow): those are usable after all (``o`` set back to True)."""
    cand = idx[overflow]
    fin = np.isfinite(xa[cand]) & np.isfinite(ya[cand]) & np.isfinite(ta[cand])
    if va is not None:
        fin &= va[cand]
    if not fin.any():
        return idx
    o[cand[fin]] = True
    return idx[~np.isin(idx, cand[fin])]


def _ok_range(xa, ya, o, idx) -> float:
    """max |x|, |y| over the ok samples of a chunk (``o``; ``idx`` its not-ok positions, None when none).

    NaN-propagating max / min (twice as fast as fmax / fmin) on a coordinate without NaN at the not-ok
    positions; NaN-ignoring ones otherwise. Values of not-ok samples may count while the result is <= 2 (it
    only matters beyond 2): then the range is taken again over the ok samples alone.
    """
    r = 0.0
    for c in (xa, ya):
        if idx is None or not np.isnan(c[idx]).any():
            r = max(r, np.maximum.reduce(c), -np.minimum.reduce(c))
        else:
            r = max(r, np.fmax.reduce(c), -np.fmin.reduce(c))
    if r > 2.0 and idx is not None:
        xo, yo = xa[o], ya[o]
        r = max(xo.max(), -xo.min(), yo.max(), -yo.min())
    return float(r)


def _cat(arrays: list) -> np.ndarray:
    """Concatenated int64 index arrays (empty when none)."""
    return np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.zeros(0, np.int64)


def _step_slow(ti, xi, yi, tj, xj, yj, thr2: float, a2: float):
    """The speed test on the step (i, j): later time and dx^2 + a^2 dy^2 < thr^2 dt^2."""
    with np.errstate(invalid="ignore", over="ignore"):
        dt = tj - ti
        dx, dy = xj - xi, yj - yi
        d2 = dx * dx + (dy * dy * a2 if a2 != 1.0 else dy * dy)
        return (dt > 0) & (d2 < thr2 * (dt * dt))


def _fix_next_to_bad(t, x, y, bad, prev: int, nxt: int, slow, thr2: float, a2: float, lo: int) -> None:
    """`slow` at the sorted not-ok samples ``bad`` (False) and at their ok neighbours.

    A sample next to a not-ok one has no usable central difference; it takes the forward step if usable (next
    sample ok, later time), else the backward one, else it is not slow (`speed`). Next to a not-ok b that is
    simply: b - 1 gets the step (b-2, b-1), b + 1 the step (b+1, b+2), each usable when its other sample is
    ok. Which it is follows from the distance to the neighbouring entries of ``bad`` itself (no mask): 2
    means the neighbour is ok but its partner is not, >= 3 both are ok. ``prev`` / ``nxt``: the not-ok
    samples just before / after ``bad``, or stand-ins that give the same answer (-1 and n: outside the array;
    for the first entries >= lo + 2 any value <= lo - 1; for the last entries <= nxt - 3, nxt). Entries below
    ``lo`` + 2 with lo > 0 are left to the caller (their neighbours' usability is not known here).
    """
    if lo > 0:
        bad = bad[np.searchsorted(bad, lo + 2):]
        if not bad.size:
            return
    slow[bad] = False
    before = np.diff(bad, prepend=prev)  # b - previous not-ok sample
    after = np.diff(bad, append=nxt)  # next not-ok sample - b
    slow[bad[before == 2] - 1] = False
    slow[bad[after == 2] + 1] = False
    left = bad[before >= 3] - 2  # step (b-2, b-1), written at b - 1
    right = bad[after >= 3] + 1  # step (b+1, b+2), written at b + 1
    i = np.concatenate((left, right))
    st = _step_slow(t[i], x[i], y[i], t[i + 1], x[i + 1], y[i + 1], thr2, a2)
    slow[left + 1] = st[:left.size]
    slow[right] = st[left.size:]


def _fix_ends(t, x, y, bad, slow, thr2: float, a2: float) -> None:
    """The ends: forward step at 0, backward at n - 1 (both samples ok)."""
    n = t.size
    head, tail = bad[:2].tolist(), bad[-2:].tolist()
    slow[0] = 0 not in head and 1 not in head and bool(_step_slow(t[0], x[0], y[0], t[1], x[1], y[1], thr2, a2))
    slow[n - 1] = (n - 1 not in tail and n - 2 not in tail
                   and bool(_step_slow(t[n - 2], x[n - 2], y[n - 2], t[n - 1], x[n - 1], y[n - 1], thr2, a2)))


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


def check_times(t: np.ndarray, down: int | None = None) -> None:
    """Times may repeat but not decrease: one error naming the first sample below an earlier time (``down``
    when the caller found it on the way, else `first_decrease`)."""
    k = first_decrease(t) if down is None else down
    if k >= 0:
        raise StreamGazeError(f"t_s must not decrease: sample {k} at {t[k]:g} s comes after a later time "
                              f"(sort the samples by time)")


def first_decrease(t: np.ndarray) -> int:
    """Index of the first time below an earlier time, or -1 (NaN times are skipped). Chunks in
    cache: the minimum step (NaN when a time is missing) settles a chunk in two passes; the rare chunk with a
    missing time or a decrease is checked exactly against the running maximum."""
    latest = -np.inf  # the largest time so far
    step = np.empty(min(t.size, CHUNK), np.float64)
    with np.errstate(invalid="ignore"):
        for a in range(0, t.size, CHUNK):
            b = min(a + CHUNK, t.size)
            d = step[:b - a]
            d[0] = t[a] - latest
            np.subtract(t[a + 1:b], t[a:b - 1], out=d[1:])
            if np.minimum.reduce(d) >= 0:  # no NaN, no decrease
                latest = t[b - 1]
                continue
            run = np.fmax.accumulate(t[a:b])
            before = np.concatenate(([latest], np.fmax(run[:-1], latest)))
            down = np.flatnonzero(t[a:b] < before)
            if down.size:
                return a + int(down[0])
            latest = np.fmax(latest, run[-1])
    return -1


def _as_arrays(t_s, x, y, valid, *, want_range: bool = False):
    """float64 views (copies only when needed) and ``ok`` = finite t, x, y (and valid).

    ``ok`` is built in cache-sized chunks (one pass instead of five full-size temporaries). With
    ``want_range`` also returns max |x|, |y| over the ok samples (for the pixel check; 0 when none).
    """
    t, x, y, v = _convert(t_s, x, y, valid)
    n = t.size
    ok = np.empty(n, bool)
    step = 1 << 16  # bools per piece of the mask

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
    from streamgaze.plugins.manager import lookup

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
    Samples that are NaN or ``valid == False`` split fixations; times may repeat but not decrease (a
    `StreamGazeError` names the first such sample). Returns a ``pyarrow.Table`` with ``start_idx,
    end_idx`` (end exclusive), ``t_start`` (first sample's time), ``t_end`` (last sample's time), ``x, y``
    (centroid), ``n_samples``, ``duration_s``.
    """
    det = get_detector(detector)
    params = check_params("detect()", params, getattr(det, "defaults", {}))
    fused = getattr(det, "fused", None)
    if fused is not None:  # one pass computes usability, the range check and the detector's core
        t, xx, yy, v = _convert(t_s, x, y, valid)
        r = fused(t, xx, yy, v, deg_per_unit=float(deg_per_unit or DEFAULT_DEG_PER_UNIT),  # (checks the times)
                  want_range=deg_per_unit is None, **params)
        if r is not None:
            table, big = r
            if deg_per_unit is None and big > 2.0:
                raise StreamGazeError("x, y look like pixels (values > 2): pass deg_per_unit (degrees per pixel)")
            return table
    t, xx, yy, ok, big = _as_arrays(t_s, x, y, valid, want_range=deg_per_unit is None)
    check_times(t)
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
        return events_columns(s, e, z, z, z, z, np.zeros(0, np.int64))
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
    return events_columns(s, e, t[s], t[e - 1], mx, my, n)


def events_columns(s, e, t0, t1, mx, my, n) -> pa.Table:
    """The events table from its columns (duration derived)."""
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

    Two neighbouring fixations (in time order) join when the distance between their centres is < ``merge_px``
    and the gap (next t_start - previous t_end) is < ``merge_gap_s``. The distance is in pixel-equivalents: the
    ``width`` x ``height`` frame scaled to `MERGE_FRAME_WIDTH` px wide, so a setting means the same share of the
    image on a 640 px EGTEA video and a 1408 px Aria one. Without a frame size the frame is taken as square.
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
    W = MERGE_FRAME_WIDTH
    H = W * height / width if (width and height) else W
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

    from streamgaze.gaze.video import read_frames_at

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

    from streamgaze.gaze.video import _capture

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
    name is an `InputError`. The angular scale is ``deg_per_unit`` when given, else the video's ``gaze_units``
    row (set at ingest by formats that know their camera or screen), else `DEFAULT_DEG_PER_UNIT`; the aspect
    likewise comes from the video's size, else ``gaze_units``. Also clears the ``objects`` rows of the processed
    videos (their episode ids no longer hold). All videos are written in one transaction.
    """
    from streamgaze.progress import stage
    from streamgaze.store import open_store

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
        units = {r["video_id"]: r for r in store.rows("SELECT video_id, deg_per_unit, aspect FROM gaze_units")}
        assumed = 0  # videos detected at the assumed DEFAULT_DEG_PER_UNIT
        with stage("fixations", total=len(vids)) as advance:
            for vid in vids:
                g = store.query("SELECT t_s, x, y, valid FROM gaze WHERE video_id = ? ORDER BY t_s", [vid])
                m, u = meta.get(vid, {}), units.get(vid, {})
                W, H = m.get("width"), m.get("height")
                kw = dict(det_params)
                if "aspect" in det_defaults and "aspect" not in kw and (W and H or u.get("aspect")):
                    kw["aspect"] = H / W if W and H else u["aspect"]
                deg_per_unit = params.get("deg_per_unit") or u.get("deg_per_unit")
                assumed += deg_per_unit is None and getattr(det, "uses_degrees", True)
                if "video_path" in det_defaults and not kw.get("video_path"):
                    if not m.get("path"):
                        raise InputError(store_path, f"detector {detector} needs the scene video of {vid!r}; "
                                         "ingest it with --video")
                    kw["video_path"] = m["path"]
                if "video_fps" in det_defaults and "video_fps" not in kw and m.get("fps"):
                    kw["video_fps"] = float(m["fps"])
                fx = detect(
                    g["t_s"].to_numpy(), _f(g["x"]), _f(g["y"]),
                    g["valid"].fill_null(False).to_numpy(zero_copy_only=False),
                    detector=detector, deg_per_unit=deg_per_unit, **kw,
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
    line = f"fixations ({detector}): {n_fix} fixations, {n_ep} episodes over {len(results)} video(s)"
    if assumed:
        line += (f"; {assumed} video(s) without a known camera scale: {DEFAULT_DEG_PER_UNIT:g} deg per frame width "
                 "assumed (--param deg_per_unit=N sets it)")
    return line


def _f(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
