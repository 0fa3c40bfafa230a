"""Built-in fixation detectors (``streamgaze fixations --detector NAME``, `streamgaze.fixations.detect`)."""
from __future__ import annotations

import numpy as np

from streamgaze import hookimpl
from streamgaze.fixations import runs, slow_mask


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
        "aspect": 1.0,
        "gap_fill_ms": 0.0,
        "merge_ms": 0.0,
        "merge_deg": 0.5,
    }

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        return self._detect(t, x, y, ok, deg_per_unit, p)

    def _detect(self, t, x, y, ok, deg_per_unit, p, *, shift=None):
        """``shift``: optional (sx, sy) per sample subtracted from x, y for the speed only (ivt_flow)."""
        xo, yo = x, y
        if p["gap_fill_ms"] > 0:
            x, y, ok = fill_gaps(t, x, y, ok, p["gap_fill_ms"] / 1000.0)
        if shift is not None:
            x, y = x - shift[0], y - shift[1]
        thr = float(p["threshold_units_s"]) if p["threshold_units_s"] is not None else p["threshold_deg_s"] / deg_per_unit
        max_gap = max(p["max_gap_ms"] / 1000.0, 2.5 * _median_dt(t))
        slow, gap = slow_mask(t, x, y, ok, thr, aspect=p["aspect"], max_gap_s=max_gap)
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
        dur = t[e - 1] - t[s]
        keep = ((e - s) >= int(p["min_samples"])) & (dur >= p["min_duration_ms"] / 1000.0 - 1e-9)
        s, e = s[keep], e[keep]
        if p["merge_ms"] > 0 and s.size > 1:
            s, e = merge_events(t, xo, yo, ok, s, e, p["merge_ms"] / 1000.0, p["merge_deg"] / deg_per_unit, p["aspect"])
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
    from streamgaze.fixations import events_table

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

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        from streamgaze.errors import StreamGazeError
        from streamgaze.fixations import scene_flow

        p = {**self.defaults, **params}
        if not p["video_path"]:
            raise StreamGazeError("ivt_flow needs the scene video: pass video_path (run_fixations reads it from the store)")
        fps, dx, dy = scene_flow(p["video_path"], width=int(p["flow_width"]), fps=float(p["video_fps"]) or None)
        ft = np.arange(dx.size + 1) / fps
        sx = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dx))))
        sy = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dy))))
        return self._detect(t, x, y, ok, deg_per_unit, p, shift=(sx, sy))


def _caps(t: np.ndarray, ok: np.ndarray, max_gap_s: float) -> np.ndarray:
    """For each sample i: the first index >= i that an event starting at i may not reach (a bad sample, or the
    sample after a time gap). Vectorised: reverse running minimum of the break positions."""
    n = t.size
    brk = ~ok.copy()
    if n >= 2:
        gap = np.flatnonzero(np.diff(t) > max_gap_s) + 1
        gap_mark = np.zeros(n, bool)
        gap_mark[gap] = True
    else:
        gap_mark = np.zeros(n, bool)
    # a bad sample i caps at i; a gap before sample g caps every earlier start at g
    pos = np.where(brk | gap_mark, np.arange(n), n)
    cap = np.minimum.accumulate(pos[::-1])[::-1]
    # a start exactly at a gap position may begin there: its cap is the next break after it
    nxt = np.concatenate((cap[1:], [n]))
    return np.where(gap_mark & ~brk, nxt, cap)


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

    1. ``cap[i]``: the first index an event starting at i may not reach (a bad sample, the sample after a
       gap), by a reverse running minimum. ``w[i]``: the minimal window end (duration and sample count).
    2. **Good starts** (window [i, w[i]) clean and dispersion <= D), for all i at once. The window length
       w[i] - i takes few distinct values; for each common one the sliding max/min of x and y come from the
       van Herk / Gil-Werman block trick (prefix and suffix running maxima inside blocks of that length,
       ``np.maximum.accumulate`` on a reshaped array; O(n) per length); rare lengths are gathered.
    3. **Growth** ``E(a)`` (largest end <= cap[a] with dispersion <= D) for a *set* of starts at once: a
       (starts x K) gather, running max/min along the rows with the previous block's values carried in,
       the first column over D ends the row; rows still inside continue with K doubled.
    4. **The chain**: a fixation at a is followed by the first good start >= E(a). Starts are guessed (the
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
        cap = _caps(t, ok, max(p["max_gap_ms"] / 1000.0, 2.5 * _median_dt(t)))
        # minimal window end for each start: enough samples and enough duration
        need = _search_sorted_keys(t, t + p["min_duration_ms"] / 1000.0 - 1e-9) + 1
        w = np.maximum(need, np.arange(n) + int(p["min_samples"]))
        cand = np.flatnonzero(ok & (w <= cap))
        empty = np.zeros(0, np.int64)
        if cand.size == 0:
            return empty, empty
        good = cand[_window_dispersion(x, y, cand, w[cand]) <= D]
        if good.size == 0:
            return empty, empty
        # 4. the chain, by closing a guessed set of starts under "next good start after the end"
        run_start = np.ones(good.size, bool)
        run_start[1:] = good[1:] != good[:-1] + 1
        todo = good[run_start]
        starts, ends = empty, empty
        while todo.size:
            e = _grow_many(x, y, todo, w[todo], cap[todo], D)
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


def _sliding_range(a: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """max and min of a[i:i+L] for i = 0 .. len(a) - L: windows of doubling length on contiguous slices
    (log2 L passes), then the two overlapping power-of-two windows that cover L."""
    out = []
    for f in (np.maximum, np.minimum):
        m, h = a, 1
        while 2 * h <= L:
            m = f(m[:-h], m[h:])  # windows of length 2h
            h *= 2
        out.append(f(m[:a.size - L + 1], m[L - h:L - h + a.size - L + 1]))
    return out[0], out[1]


def _search_sorted_keys(t: np.ndarray, keys: np.ndarray, chunk: int = 1 << 15) -> np.ndarray:
    """``np.searchsorted(t, keys, side="left")`` for sorted ``keys``, one cache-sized slice of t per chunk of
    keys (a full-array binary search per key misses the cache at every step)."""
    out = np.empty(keys.size, np.int64)
    bounds = np.searchsorted(t, keys[::chunk], side="left")
    ends = np.append(np.searchsorted(t, keys[chunk - 1::chunk], side="right"), t.size) if keys.size else []
    for c, (lo, hi) in enumerate(zip(bounds.tolist(), list(ends))):
        k = keys[c * chunk:(c + 1) * chunk]
        out[c * chunk:c * chunk + k.size] = np.searchsorted(t[lo:hi], k, side="left") + lo
    return out


def _window_dispersion(x, y, s, e) -> np.ndarray:
    """(max - min) of x plus of y over [s, e) for many windows. Window lengths that are common use
    `_sliding_range` over the span of their starts; the others a (windows x length) gather."""
    out = np.empty(s.size)
    L = e - s
    vals, counts = np.unique(L, return_counts=True)
    for Lv, c in zip(vals.tolist(), counts.tolist()):
        sel = np.flatnonzero(L == Lv) if vals.size > 1 else slice(None)
        ss = s[sel]
        lo, hi = int(ss[0]), int(ss[-1]) + Lv
        if c * Lv > 4 * (hi - lo):  # dense: sliding window over the span
            tot = 0.0
            for a in (x[lo:hi], y[lo:hi]):
                mx, mn = _sliding_range(a, Lv)
                tot = tot + (mx[ss - lo] - mn[ss - lo])
            out[sel] = tot
        else:
            idx = ss[:, None] + np.arange(Lv)
            xs, ys = x[idx], y[idx]
            out[sel] = (xs.max(1) - xs.min(1)) + (ys.max(1) - ys.min(1))
    return out


def _grow_many(x, y, a, w, cap, D: float, k0: int = 32) -> np.ndarray:
    """For each start a (whose window [a, w) has dispersion <= D): the largest end <= cap such that the
    dispersion of [a, end) stays <= D. Vectorised over the starts: blocks of K columns (K doubling), running
    max/min along rows with the previous block's extremes carried in."""
    n = x.size
    end = cap.copy()
    act = np.arange(a.size)
    pos0 = a.copy()  # first column of the current block, per start
    cx = np.full((a.size, 4), np.nan)  # carried max x, min x, max y, min y
    K = k0
    first = True
    while act.size:
        cols = pos0[act, None] + np.arange(K)
        inb = cols < cap[act, None]
        colc = np.minimum(cols, n - 1)
        xs, ys = x[colc], y[colc]
        mxx, mnx = np.maximum.accumulate(xs, axis=1), np.minimum.accumulate(xs, axis=1)
        mxy, mny = np.maximum.accumulate(ys, axis=1), np.minimum.accumulate(ys, axis=1)
        if not first:
            c = cx[act]
            np.maximum(mxx, c[:, 0:1], out=mxx)
            np.minimum(mnx, c[:, 1:2], out=mnx)
            np.maximum(mxy, c[:, 2:3], out=mxy)
            np.minimum(mny, c[:, 3:4], out=mny)
        disp = (mxx - mnx) + (mxy - mny)
        over = (disp > D) & inb & (cols >= w[act, None])  # the column j is over: the event ends at j
        hit = over.any(axis=1)
        j = over.argmax(axis=1)
        end[act[hit]] = cols[hit, j[hit]]
        last = pos0[act] + K  # next block's first column
        cont = ~hit & (last < cap[act])
        cx[act] = np.column_stack((mxx[:, -1], mnx[:, -1], mxy[:, -1], mny[:, -1]))
        act = act[cont]
        pos0[act] = last[cont]
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
    """

    defaults = {"radius": 0.15, "min_duration_s": 2.0, "gap_s": 0.01}

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        idx = np.flatnonzero(ok)
        s, e = dwell_segments(t[idx], x[idx], y[idx], p["radius"], p["min_duration_s"], p["gap_s"])
        if s.size == 0:
            return s, e
        return idx[s], idx[e - 1] + 1


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
