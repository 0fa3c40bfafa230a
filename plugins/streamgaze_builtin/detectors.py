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
    """

    defaults = {
        "threshold_deg_s": 40.0,
        "threshold_units_s": None,
        "min_duration_ms": 60.0,
        "min_samples": 3,
        "max_gap_ms": 100.0,
        "aspect": 1.0,
    }

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
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
        return s[keep], e[keep]


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
    dispersion stays under it. Vectorised: candidate starts are tested all at once, growth runs on numpy
    running maxima; the only Python loop is over fixations.

    Defaults for head-mounted scene-camera gaze: ``dispersion_deg`` = 1.5 (screen setups use 1.0; scene-camera
    noise and slippage are larger), ``min_duration_ms`` = 80 and ``min_samples`` = 3 (stricter wins), gaps
    longer than ``max_gap_ms`` = 100 (or 2.5 x the median interval) and invalid samples end a fixation.
    """

    defaults = {"dispersion_deg": 1.5, "dispersion_units": None, "min_duration_ms": 80.0, "min_samples": 3,
                "max_gap_ms": 100.0, "aspect": 1.0}

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        n = t.size
        y = y * p["aspect"]
        D = float(p["dispersion_units"]) if p["dispersion_units"] is not None else p["dispersion_deg"] / deg_per_unit
        cap = _caps(t, ok, max(p["max_gap_ms"] / 1000.0, 2.5 * _median_dt(t)))
        # minimal window end for each start: enough samples and enough duration
        need = np.searchsorted(t, t + p["min_duration_ms"] / 1000.0 - 1e-9, side="left") + 1
        w = np.maximum(need, np.arange(n) + int(p["min_samples"]))
        cand = np.flatnonzero(ok & (w <= cap))
        if cand.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        good = _window_dispersion(x, y, cand, w[cand]) <= D
        starts = cand[good]
        out_s, out_e = [], []
        i = 0
        while True:
            k = np.searchsorted(starts, i)
            if k >= starts.size:
                break
            a = int(starts[k])
            e = _grow(x, y, a, int(w[a]), int(cap[a]), D)
            out_s.append(a)
            out_e.append(e)
            i = e
        return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64)


def _window_dispersion(x, y, s, e, chunk: int = 1 << 20) -> np.ndarray:
    """(max - min) of x plus of y over [s, e) for many windows: a sparse table of range maxima/minima, built in
    chunks so memory stays ~ chunk x log2(longest window)."""
    out = np.empty(s.size)
    for c0 in range(0, s.size, chunk):
        ss, ee = s[c0:c0 + chunk], e[c0:c0 + chunk]
        lo, hi = int(ss[0]), int(ee.max())
        L = ee - ss
        levels = max(1, int(np.ceil(np.log2(max(int(L.max()), 1)))) + 1)
        tot = 0.0
        for a in (x[lo:hi], y[lo:hi]):
            mx, mn = [a], [a]
            for k in range(1, levels):
                h = 1 << (k - 1)
                mx.append(np.maximum(mx[-1][:-h], mx[-1][h:]))
                mn.append(np.minimum(mn[-1][:-h], mn[-1][h:]))
            lev = np.floor(np.log2(np.maximum(L, 1))).astype(np.int64)
            r0 = ss - lo
            r1 = ee - lo - (1 << lev)
            hi_v = np.empty(ss.size)
            lo_v = np.empty(ss.size)
            for k in np.unique(lev):
                m = lev == k
                hi_v[m] = np.maximum(mx[k][r0[m]], mx[k][r1[m]])
                lo_v[m] = np.minimum(mn[k][r0[m]], mn[k][r1[m]])
            tot = tot + (hi_v - lo_v)
        out[c0:c0 + chunk] = tot
    return out


def _grow(x, y, a: int, e: int, cap: int, D: float) -> int:
    """Largest end <= cap such that the dispersion of [a, end) stays <= D (windows of doubling length)."""
    step = 64
    while True:
        hi = min(cap, e + step)
        if hi <= e:
            return e
        xs, ys = x[a:hi], y[a:hi]
        disp = (np.maximum.accumulate(xs) - np.minimum.accumulate(xs)) + (np.maximum.accumulate(ys) - np.minimum.accumulate(ys))
        over = np.flatnonzero(disp[e - a:] > D)
        if over.size:
            return e + int(over[0])
        e = hi
        step *= 4


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
    return {"ivt": IVT(), "idt": IDT(), "streamgaze_dwell": StreamGazeDwell()}
