"""I-DT (``idt``): dispersion-threshold identification over uneven timestamps, vectorised."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streamgaze_builtin.detectors.common import max_gap_s, median_dt


class IDT:
    """I-DT (Salvucci & Goldberg 2000) over uneven timestamps: a window lasting >= the minimum duration whose
    dispersion (x range + y range, in degrees) is <= the threshold starts a fixation, which grows while the
    dispersion stays under it; the next search starts at the fixation's end (a failed start moves on by one
    sample).

    Defaults for head-mounted scene-camera gaze: ``dispersion_deg`` = 1.5 (screen setups use 1.0; scene-camera
    noise and slippage are larger), ``min_duration_ms`` = 80 and ``min_samples`` = 3 (stricter wins), gaps
    longer than ``max_gap_ms`` = 100 (or 2.5 x the median interval) and invalid samples end a fixation.

    Algorithm (no Python loop over samples; the result equals the sequential definition, see the test):

    1. **Good starts** (`_good_starts`; window [i, w[i]) with w[i] the minimal window end, clean and
       dispersion <= D) for all i, in one pass over cache-sized chunks: w from a constant offset checked on
       two shifted slices of t (a local binary search only where it fails), the breaks (not-ok samples, the
       sample after a time gap) by a cumulative count when the chunk has any, and the sliding max/min of
       the four rows x, -x, y, -y (one 2-D array) from windows of doubling length on contiguous slices.
       The break positions are kept: ``cap(a)`` (the first index an event starting at a may not reach) is
       the first break after a, looked up for the few starts that are grown.
    2. **Growth** ``E(a)`` (largest end <= cap(a) with dispersion <= D) for a *set* of starts at once: rows
       of K consecutive samples (a strided view, no index arrays), running max/min along the rows with the
       previous block's values carried in, the first column over D ends the row; rows still inside
       continue with K doubled.
    3. **The chain**: a fixation at a is followed by the first good start >= E(a). Starts are guessed (the
       first good start of every run of good starts), their successors computed, missing successors added
       and grown in the next round until the set is closed; then one walk over the fixations picks the
       chain from the first good start (a Python loop over fixations only, scalar list lookups).
    """

    defaults = {"dispersion_deg": 1.5, "dispersion_units": None, "min_duration_ms": 80.0, "min_samples": 3,
                "max_gap_ms": 100.0, "aspect": 1.0}

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        n = t.size
        if p["aspect"] != 1.0:
            y = y * p["aspect"]
        D = float(p["dispersion_units"]) if p["dispersion_units"] is not None else p["dispersion_deg"] / deg_per_unit
        max_gap = max_gap_s(median_dt(t), p)
        good, brk = _good_starts(t, x, y, ok, p["min_duration_ms"] / 1000.0, int(p["min_samples"]), max_gap, D)
        empty = np.zeros(0, np.int64)
        if good.size == 0:
            return empty, empty
        # the chain, by closing a guessed set of starts under "next good start after the end"
        run_start = np.ones(good.size, bool)
        run_start[1:] = good[1:] != good[:-1] + 1
        todo = good[run_start]
        starts, ends = empty, empty
        while todo.size:
            k = np.searchsorted(brk, todo, side="right")
            cap = np.where(k < brk.size, brk[np.minimum(k, brk.size - 1)], n) if brk.size else np.full(todo.size, n)
            e = _grow_many(x, y, todo, cap, D)
            starts, ends = np.concatenate((starts, todo)), np.concatenate((ends, e))
            k = np.searchsorted(good, e)
            nxt = good[k[k < good.size]]
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
            j = np.searchsorted(starts, nxt)
            have = (j < starts.size) & (starts[np.minimum(j, starts.size - 1)] == nxt)
            todo = np.unique(nxt[~have])
        # successor of each computed start: index into `starts` of the first good start >= its end
        kg = np.searchsorted(good, ends)
        succ_pos = np.where(kg < good.size, good[np.minimum(kg, good.size - 1)], n)
        succ = np.searchsorted(starts, succ_pos).tolist()
        m = starts.size
        out = []
        i = 0  # good[0] is a run start, so starts[0] == good[0]
        while i < m:
            out.append(i)
            i = succ[i]
        out = np.asarray(out, np.int64)
        return starts[out], ends[out]


#: Starts per chunk of the good-start pass (four float64 rows of this length stay in L2 cache).
IDT_CHUNK = 1 << 14


def _good_starts(t, x, y, ok, dur_s: float, min_samples: int, max_gap: float, D: float):
    """Good starts of I-DT and the break positions, one pass over cache-sized chunks.

    A start i is good when ok[i], its minimal window [i, w) (w = max(first j with t[j] >= t[i] + dur_s - 1e-9,
    plus one; i + min_samples), at least one sample) lies inside the array, holds no break at i+1 .. w-1 and
    its dispersion (x range + y range) is <= D. A break is a not-ok sample or a sample more than ``max_gap``
    after the previous one. Returns (good, breaks), sorted int64 indices.
    """
    n = t.size
    goods, brks = [], []
    ms = max(int(min_samples), 1)
    C = IDT_CHUNK
    for a0 in range(0, n, C):
        a1 = min(a0 + C, n)
        m = a1 - a0
        key = t[a0:a1] + dur_s
        key -= 1e-9
        # first j with t[j] >= key: a constant offset d, checked on two shifted slices of t
        d = int(np.searchsorted(t, key[0])) - a0
        L = None
        if d >= 1 and a1 + d <= n:
            g = np.greater_equal(t[a0 + d:a1 + d], key)
            g &= np.less(t[a0 + d - 1:a1 + d - 1], key)
            if g.all():
                L = max(d + 1, ms)
        if L is None:  # uneven: a binary search on the slice of t the keys fall in
            lo = int(np.searchsorted(t, key[0]))
            hi = int(np.searchsorted(t, key[-1], side="right"))
            lens = np.searchsorted(t[lo:hi], key) + (lo + 1 - a0) - np.arange(m)
            np.maximum(lens, ms, out=lens)
            if lens.min() == lens.max():
                L = int(lens[0])
        wmax = a1 - 1 + L if L is not None else a0 + int((lens + np.arange(m)).max())
        se = min(n, wmax)
        # breaks in [a0, se): not-ok samples, samples after a time gap
        bm = np.logical_not(ok[a0:se])
        if se - a0 > 1:
            gp = np.subtract(t[a0 + 1:se], t[a0:se - 1])
            bm[1:] |= gp > max_gap
        if a0 >= 1 and t[a0] - t[a0 - 1] > max_gap:
            bm[0] = True
        bpos = np.flatnonzero(bm[:m])
        if bpos.size:
            brks.append(bpos + a0)
        # dispersion of the windows: rows x, -x, y, -y; window max by doubling
        span = se - a0
        S = np.empty((4, span))
        S[0] = x[a0:se]
        np.negative(S[0], out=S[1])
        S[2] = y[a0:se]
        np.negative(S[2], out=S[3])
        anyb = bool(bm[1:].any())
        cs = np.cumsum(bm, dtype=np.int32) if anyb else None
        if L is not None:
            me = min(m, span - L + 1)  # starts whose window fits in the array
            if me <= 0:
                continue
            mx, h = S, 1
            while 2 * h <= L:
                mx = np.maximum(mx[:, :-h], mx[:, h:])
                h *= 2
            r = np.maximum(mx[:, :me], mx[:, L - h:L - h + me])
            disp = np.add(r[0], r[1])
            disp += np.add(r[2], r[3])
            gd = np.less_equal(disp, D)
            gd &= ok[a0:a0 + me]
            if anyb:  # no break at i+1 .. i+L-1: cs[i+L-1] - cs[i] == 0
                gd &= cs[L - 1:L - 1 + me] == cs[:me]
            goods.append(np.flatnonzero(gd) + a0)
        else:
            il = np.arange(m)
            fit = il + lens <= span
            il, ln = il[fit], lens[fit]
            if il.size == 0:
                continue
            gd = ok[a0 + il]
            if anyb:
                gd &= cs[il + ln - 1] == cs[il]
            k = np.frexp(ln.astype(np.float64))[1] - 1  # floor(log2(L)), L >= 1
            disp = np.empty(il.size)
            mx, h, lev = S, 1, 0
            for kk in range(int(k.max()) + 1):
                if kk:
                    mx = np.maximum(mx[:, :-h], mx[:, h:])
                    h *= 2
                sel = np.flatnonzero(k == kk)
                if sel.size:
                    r = np.maximum(np.take(mx, il[sel], axis=1), np.take(mx, il[sel] + ln[sel] - h, axis=1))
                    disp[sel] = (r[0] + r[1]) + (r[2] + r[3])
            gd &= disp <= D
            goods.append(il[gd] + a0)
    cat = lambda v: np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64)  # noqa: E731
    return cat(goods), cat(brks)


def _grow_many(x, y, a, cap, D: float, k0: int = 32) -> np.ndarray:
    """For each start a (whose minimal window is good): the largest end <= cap such that the dispersion of
    [a, end) stays <= D. Vectorised over the starts: rows of K consecutive samples (rows of a strided view
    of x and y, no index arrays; K doubling; groups of rows sized for the cache), running max/min along
    rows with the previous block's extremes carried in. Columns past ``cap`` may be over D (or NaN) without
    harm: the end is min(first over, cap). The columns before the minimal window end are never over D
    (they are inside the good window)."""
    n = x.size
    end = cap.copy()
    act = np.arange(a.size)
    pos0 = a.copy()  # first column of the current block, per start
    carry = np.empty((4, a.size))  # max x, min x, max y, min y of the previous blocks, per start
    K = k0
    first = True
    while act.size:
        vx = sliding_window_view(x, K) if K <= n else None
        vy = sliding_window_view(y, K) if K <= n else None
        nxt = []
        G = max(64, (1 << 16) // K)
        for g0 in range(0, act.size, G):
            rows = act[g0:g0 + G]
            p = pos0[rows]
            if vx is not None and int(p[-1]) + K <= n:  # p is sorted (starts are)
                xs, ys = vx[p], vy[p]
            else:  # rows reaching past the array: clip (those columns are past cap)
                idx = np.minimum(p[:, None] + np.arange(K), n - 1)
                xs, ys = x[idx], y[idx]
            xn, yn = xs.copy(), ys.copy()
            if not first:
                c = carry[:, rows]
                np.maximum(xs[:, 0], c[0], out=xs[:, 0])
                np.minimum(xn[:, 0], c[1], out=xn[:, 0])
                np.maximum(ys[:, 0], c[2], out=ys[:, 0])
                np.minimum(yn[:, 0], c[3], out=yn[:, 0])
            np.maximum.accumulate(xs, axis=1, out=xs)
            np.minimum.accumulate(xn, axis=1, out=xn)
            np.maximum.accumulate(ys, axis=1, out=ys)
            np.minimum.accumulate(yn, axis=1, out=yn)
            carry[0, rows], carry[1, rows], carry[2, rows], carry[3, rows] = xs[:, -1], xn[:, -1], ys[:, -1], yn[:, -1]
            np.subtract(xs, xn, out=xs)
            np.subtract(ys, yn, out=ys)
            xs += ys
            over = xs > D  # the column j is over: the event ends at j
            hit = over.any(axis=1)
            hr = np.flatnonzero(hit)
            if hr.size:
                j = over[hr].argmax(axis=1)
                end[rows[hr]] = np.minimum(p[hr] + j, cap[rows[hr]])
            cont = ~hit & (p + K < cap[rows])
            nxt.append(rows[cont])
        act = np.concatenate(nxt)
        pos0[act] += K  # next block's first column
        K *= 2
        first = False
    return end
