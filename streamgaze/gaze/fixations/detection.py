"""`detect` and what detector plugins share: the `Detector` protocol, parameter and time checks, input
conversion, run-length encoding (`runs`) and the events table.

`first_decrease` chunks by this module's `CHUNK` (the same value as `ivt.numpy_pass.CHUNK`).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.gaze.fixations.ivt.numpy_pass import CHUNK
from streamgaze.gaze.fixations.ivt.parallel import parallel_ranges
from streamgaze.gaze.geometry import DEFAULT_DEG_PER_UNIT
from streamgaze.plugins.manager import lookup


class Detector(Protocol):
    """Optional besides: ``device_defaults = {"screen": {name: value}}``, the parameters `run_fixations` lays
    under the user's for a video of that device class (`streamgaze.gaze.fixations.device`)."""

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


# ---------------------------------------------------------------------------------------------------------
# Input checks, `detect` and the events table


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
