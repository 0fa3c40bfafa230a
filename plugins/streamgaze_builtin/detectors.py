"""Built-in fixation detectors (``streamgaze fixations --detector NAME``, `streamgaze.gaze.fixations.detect`)."""
from __future__ import annotations

import numpy as np

from streamgaze.plugins.api import (
    check_times, compiled_ivt, compiled_threads, events_columns, events_table, frame_index, hookimpl,
    ivt_pass, ok_from_bad, pairwise_frame_gaze, parallel_ranges, runs, scene_flow, slow_mask,
    StreamGazeError,
)


class IVT:
    """I-VT: samples slower than a velocity threshold, grouped into runs; vectorised numpy, no per-sample loop.

    Speed is the central difference (one-sided next to an invalid sample), with no smoothing: at 24-30 Hz a
    Savitzky-Golay window would be longer than a saccade. Invalid/NaN samples and time gaps split fixations.

    Parameters (defaults chosen for head-mounted scene-camera gaze at 30-200 Hz):

    - ``threshold_deg_s`` = 40: between the 30 deg/s used for screen trackers and the 50+ deg/s needed when
      head motion and VOR add image motion; at 120 Hz with ~0.3 deg noise, central-difference noise speed is
      ~25 deg/s, so 40 keeps most fixation samples and still catches saccades (> 100 deg/s).
    - ``threshold_units_s`` = None: if set, compare the raw speed in coordinate units/s instead (no degrees).
    - ``min_duration_ms`` = 60 and ``min_samples`` = 3: a fixation must satisfy both, so the stricter wins
      (60 ms is the usual lower bound of fixation duration; 3 samples = ~66-100 ms at 30 Hz, where 60 ms alone
      would accept 2 samples, too few to tell a fixation from noise). Duration = last - first sample time.
    - ``velocity_window_ms`` = 20: the speed at a sample is taken between the samples about this far apart around
      it (half a window either side, at least the neighbours; cut short at missing samples), as Tobii's I-VT
      filter does (20 ms): at 30-120 Hz that is the neighbours (the central difference); at 300 Hz 3 samples
      either side, at 1000 Hz 10, so sample noise does not swamp the speed (on Hooge et al.'s human-coded
      300 Hz data kappa rose from 0.02 with neighbours, docs/gaze.md). 0: always the neighbours.
    - ``max_gap_ms`` = 100: consecutive samples further apart than max(this, 2.5 x median dt) split a fixation
      (missing rows, e.g. dropped frames, are treated as missing data).
    - ``aspect`` = 1.0: height/width of the frame, so normalised y distances are scaled to x's degrees
      (`run_fixations` sets it from the video).
    - ``gap_fill_ms`` = 0 (off): runs of missing samples whose bordering valid samples are at most this far
      apart (Tobii's I-VT filter uses 75 ms) are linearly interpolated before detection, so a short dropout
      no longer splits a fixation. Filled samples still do not count in ``n_samples`` or the centroid.
    - ``merge_ms`` = 0 (off) and ``merge_deg`` = 0.5: consecutive fixations at most ``merge_ms`` apart
      (first sample of the next - last sample of the previous) whose centroids are at most ``merge_deg``
      apart are joined (Tobii: 75 ms, 0.5 deg); applied after the minimum-duration filter. The merged event spans the samples between; its centroid averages all its ok samples.
    """

    defaults = {
        "threshold_deg_s": 40.0,
        "threshold_units_s": None,
        "min_duration_ms": 60.0,
        "min_samples": 3,
        "max_gap_ms": 100.0,
        "velocity_window_ms": 20.0,
        "aspect": 1.0,
        "gap_fill_ms": 0.0,
        "merge_ms": 0.0,
        "merge_deg": 0.5,
    }

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        return self._detect(t, x, y, ok, deg_per_unit, p)

    def fused(self, t, x, y, valid, *, deg_per_unit, want_range=False, **params):
        """`detect`'s fast path: usability (finite t, x, y and ``valid``), the range check and the speed test
        in one pass; returns ``(events table, big)`` (the times checked: `check_times`) or None (gap filling
        needs the full mask first: `detect` then takes the ``__call__`` path). Without merge, one compiled loop
        (`streamgaze.gaze.fixations.ivt.loop`, the same table bit for bit) when it was built; else the chunked numpy pass
        (`ivt_pass`)."""
        p = {**self.defaults, **params}
        if p["gap_fill_ms"] > 0:
            return None
        threshold, (max_gap, half) = self._threshold(p, deg_per_unit), self._steps(t, p)
        loop = compiled_ivt() if p["merge_ms"] <= 0 else None
        if loop is not None:
            s, e, t0, t1, mx, my, cnt, big, down = loop.ivt_events(
                t, x, y, valid, threshold=threshold, aspect=p["aspect"], max_gap_s=max_gap,
                min_samples=int(p["min_samples"]), min_duration_s=p["min_duration_ms"] / 1000.0,
                want_range=want_range, half_span=half,
                run_parts=lambda part, n: parallel_ranges(part, 0, n, threads=compiled_threads()))
            check_times(t, down)
            return events_columns(s, e, t0, t1, mx, my, cnt), big
        if half > 1:  # the window test needs the full mask: the __call__ path (`span_slow_mask`)
            return None
        check_times(t)
        slow, gap, bad, big = ivt_pass(t, x, y, valid, threshold, aspect=p["aspect"], max_gap_s=max_gap,
                                       want_range=want_range)
        if want_range and big > 2.0:  # `detect` raises
            return None, big
        s, e = self._events(t, x, y, slow, gap, deg_per_unit, p, lambda: ok_from_bad(t.size, bad))
        # without merge, runs of slow samples hold no not-ok sample: none for the table to look for
        return events_table(t, x, y, None, s, e, bad=bad if p["merge_ms"] > 0 else bad[:0]), big

    @staticmethod
    def _threshold(p, deg_per_unit):
        return float(p["threshold_units_s"]) if p["threshold_units_s"] is not None else p["threshold_deg_s"] / deg_per_unit

    @staticmethod
    def _steps(t, p) -> tuple[float, int]:
        """From one median sample interval: the time gap that splits (`max_gap_s`) and the samples either side of
        the speed window (half of ``velocity_window_ms`` in median steps, >= 1)."""
        dt = _median_dt(t)
        half = max(1, int(np.floor(p["velocity_window_ms"] / 2000.0 / dt + 0.5))) if dt > 0 else 1
        return max_gap_s(dt, p), half

    def _detect(self, t, x, y, ok, deg_per_unit, p, *, shift=None):
        """``shift``: optional (sx, sy) per sample subtracted from x, y for the speed only (ivt_flow)."""
        xo, yo = x, y
        if p["gap_fill_ms"] > 0:
            x, y, ok = fill_gaps(t, x, y, ok, p["gap_fill_ms"] / 1000.0)
        if shift is not None:
            x, y = x - shift[0], y - shift[1]
        max_gap, half = self._steps(t, p)
        slow, gap = slow_mask(t, x, y, ok, self._threshold(p, deg_per_unit), aspect=p["aspect"], max_gap_s=max_gap,
                              half_span=half)
        return self._events(t, xo, yo, slow, gap, deg_per_unit, p, lambda: ok)  # (the filled mask, as before)

    @staticmethod
    def _events(t, xo, yo, slow, gap, deg_per_unit, p, get_ok):
        """Runs of slow samples split at the gaps, the minimum-duration filter, the optional merge (which needs
        the usability mask: ``get_ok()``)."""
        if gap.size:
            # a gap after sample g ends a run at g+1: clearing nothing, we split by marking the run boundary
            s, e = runs(slow)
            cut = gap + 1
            inside = cut[slow[cut - 1] & slow[cut]]
            if inside.size:
                s = np.sort(np.concatenate((s, inside)))
                e = np.sort(np.concatenate((e, inside)))
        else:
            s, e = runs(slow)
        if s.size == 0:
            return s, e
        long = (e - s) >= int(p["min_samples"])  # the cheap test first: fewer times to gather
        s, e = s[long], e[long]
        keep = (t[e - 1] - t[s]) >= p["min_duration_ms"] / 1000.0 - 1e-9
        s, e = s[keep], e[keep]
        if p["merge_ms"] > 0 and s.size > 1:
            s, e = merge_events(t, xo, yo, get_ok(), s, e, p["merge_ms"] / 1000.0, p["merge_deg"] / deg_per_unit,
                                p["aspect"])
        return s, e


def fill_gaps(t, x, y, ok, max_s: float):
    """Linear interpolation over runs of not-ok samples whose bordering ok samples are <= ``max_s`` apart
    (only interior runs; samples with a NaN time stay missing). Returns new x, y, ok (copies)."""
    bs, be = runs(~ok)
    inner = (bs > 0) & (be < t.size)
    bs, be = bs[inner], be[inner]
    if bs.size == 0:
        return x, y, ok
    short = (t[be] - t[bs - 1]) <= max_s + 1e-9
    bs, be = bs[short], be[short]
    if bs.size == 0:
        return x, y, ok
    x, y, ok = x.copy(), y.copy(), ok.copy()
    lens = be - bs
    idx = np.repeat(bs, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
    left, right = np.repeat(bs - 1, lens), np.repeat(be, lens)
    ti = t[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (ti - t[left]) / (t[right] - t[left])
    good = np.isfinite(f)
    idx, left, right, f = idx[good], left[good], right[good], f[good]
    x[idx] = x[left] + (x[right] - x[left]) * f
    y[idx] = y[left] + (y[right] - y[left]) * f
    ok[idx] = True
    return x, y, ok


def merge_events(t, x, y, ok, s, e, max_gap_s: float, max_dist: float, aspect: float = 1.0):
    """Join consecutive events [s, e) whose gap (t[s_next] - t[e_prev - 1]) is <= ``max_gap_s`` and whose
    centroids (ok samples) are <= ``max_dist`` apart (y scaled by ``aspect``). Chains merge transitively
    (each link is judged on the original events' centroids, as in Tobii's filter)."""

    tb = events_table(t, x, y, ok, s, e)
    cx, cy = tb["x"].to_numpy(), tb["y"].to_numpy()
    with np.errstate(invalid="ignore"):
        link = ((t[s[1:]] - t[e[:-1] - 1]) <= max_gap_s + 1e-9) & (
            np.hypot(np.diff(cx), np.diff(cy) * aspect) <= max_dist)
    first = np.concatenate(([True], ~link))
    last = np.concatenate((~link, [True]))
    return s[first], e[last]


class IVTFlow(IVT):
    """I-VT with head-motion compensation: the scene's global optic flow is subtracted from the gaze velocity.

    When the head turns, a gaze held on an object moves across the scene image with the whole scene; plain
    I-VT then sees velocity (and misses the fixation, or needs a high threshold). Here the scene video's
    global motion is estimated per frame pair (OpenCV Farneback dense flow on grey frames downscaled to
    ``flow_width`` px; the median flow vector, robust to hands and moving objects), integrated to a scene
    displacement S(t) (linear between frame times k / fps, the store's time origin being the video start),
    and the speed is computed on gaze - S(t): the gaze velocity relative to the scene. Everything else (and
    the centroids, on the raw gaze) is `IVT`. Parameters: IVT's, plus ``video_path`` (`run_fixations`
    fills it from the store's videos.path), ``video_fps`` (0: from the video, or the store's fps) and
    ``flow_width`` = 160. The flow of a video is computed once per process (cached by path, size, mtime).
    """

    defaults = {**IVT.defaults, "threshold_deg_s": 30.0, "video_path": "", "video_fps": 0.0, "flow_width": 160}
    fused = None  # the speed is taken on gaze - S(t): always the __call__ path

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):

        p = {**self.defaults, **params}
        if not p["video_path"]:
            raise StreamGazeError("ivt_flow needs the scene video: pass video_path (run_fixations reads it from the store)")
        fps, dx, dy = scene_flow(p["video_path"], width=int(p["flow_width"]), fps=float(p["video_fps"]) or None)
        ft = np.arange(dx.size + 1) / fps
        sx = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dx))))
        sy = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dy))))
        return self._detect(t, x, y, ok, deg_per_unit, p, shift=(sx, sy))


def max_gap_s(median_dt: float, p: dict) -> float:
    """Consecutive samples further apart than max(``max_gap_ms``, 2.5 x the median interval) split events."""
    return max(p["max_gap_ms"] / 1000.0, 2.5 * median_dt)


def _median_dt(t: np.ndarray) -> float:
    """Median sample interval from at most ~65 k evenly spread intervals (a full median of 10^8 is slow)."""
    if t.size < 2:
        return 0.0
    step = max(1, (t.size - 1) // 65536)
    dt = t[step::step] - t[step - 1:-1:step] if step > 1 else np.diff(t)
    dt = dt[dt > 0]
    return float(np.median(dt)) if dt.size else 0.0


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
        max_gap = max_gap_s(_median_dt(t), p)
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
    from numpy.lib.stride_tricks import sliding_window_view

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


class StreamGazeDwell:
    """The StreamGaze reference's anchor dwell detector (``extract_fixation_segments``), reproduced exactly.

    A segment lasts while each sample stays within ``radius`` (normalised units) of the segment's *first*
    sample; a sample outside it ends the segment unless it came <= ``gap_s`` after the previous sample (then
    it is skipped as a flick). Segments lasting >= ``min_duration_s`` (last - first sample time) are kept.
    Defaults are the reference's EGTEA call (radius 0.15 = 96 px of 640, 2 s, 0.01 s); Ego4D used 0.088,
    EgoExoLearn and HoloAssist 96 / frame width. Invalid samples are left out before detection (the reference
    saw only tracked frames). Python loop over segments only; each search is a numpy scan.

    With ``video_fps`` > 0 (`run_fixations` passes the video's rate), the reference's first step comes before:
    the gaze clipped to [0, 1] and folded to one value per video frame in arrival order (``(old + new) / 2``,
    `streamgaze.gaze.align.pairwise_frame_gaze`), at the frame's start time; the segments found on the frames are
    returned as the samples of their frames.
    """

    defaults = {"radius": 0.15, "min_duration_s": 2.0, "gap_s": 0.01, "video_fps": 0.0}
    uses_degrees = False  # radius is in normalised units: no angular scale needed

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        idx = np.flatnonzero(ok)
        fps = float(p["video_fps"] or 0.0)
        if fps <= 0:
            s, e = dwell_segments(t[idx], x[idx], y[idx], p["radius"], p["min_duration_s"], p["gap_s"])
            return (s, e) if s.size == 0 else (idx[s], idx[e - 1] + 1)
        frames, fx, fy = pairwise_frame_gaze(t[idx], np.clip(x[idx], 0.0, 1.0), np.clip(y[idx], 0.0, 1.0), fps=fps)
        s, e = dwell_segments(frames / fps, fx, fy, p["radius"], p["min_duration_s"], p["gap_s"])
        frame_of = frame_index(t[idx], fps)  # non-decreasing with t
        first = np.searchsorted(frame_of, frames[s], side="left")
        last = np.searchsorted(frame_of, frames[e - 1], side="right") - 1
        return idx[first], idx[last] + 1


def dwell_segments(t, x, y, radius: float, min_duration_s: float, gap_s: float):
    """Anchor segments [s, e) of the reference (see `StreamGazeDwell`) on clean arrays."""
    n = t.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dt_prev = np.empty(n)
    dt_prev[0] = np.inf
    dt_prev[1:] = np.diff(t)
    long_gap = dt_prev > gap_s
    out_s, out_e = [], []
    a = 0
    while a < n:
        end = n
        step = 256
        lo = a + 1
        while lo < n:
            hi = min(n, lo + step)
            d = np.sqrt((x[lo:hi] - x[a]) ** 2 + (y[lo:hi] - y[a]) ** 2)
            brk = np.flatnonzero((d > radius) & long_gap[lo:hi])
            if brk.size:
                end = lo + int(brk[0])
                break
            lo = hi
            step *= 4
        if t[end - 1] - t[a] >= min_duration_s:
            out_s.append(a)
            out_e.append(end)
        a = end
    return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64)


@hookimpl
def streamgaze_fixation_detectors():
    return {"ivt": IVT(), "ivt_flow": IVTFlow(), "idt": IDT(), "streamgaze_dwell": StreamGazeDwell()}
