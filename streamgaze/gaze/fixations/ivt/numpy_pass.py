"""The I-VT speed test in numpy: the fused chunked pass (`ivt_pass`), the windowed rule (`span_slow_mask`) and
their helpers; the path `detect` takes when the compiled loop (`.loop`) was not built or cannot be used.

`CHUNK` and `FIX_EVERY` are read at call time from this module.
"""
from __future__ import annotations

import numpy as np

from streamgaze.gaze.fixations.ivt.parallel import _part_cuts, parallel_ranges


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
