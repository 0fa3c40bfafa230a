"""Sample-level agreement between event labellings (detector vs detector, detector vs reference).

`sample_labels` turns an event table into one bool per sample ("stable gaze": inside a fixation, or a
fixation or pursuit where the detector reports both); `cohen_kappa` compares two such labellings, leaving out
the samples a mask marks invalid (blinks, track loss). Both are plain vectorised numpy (no loop over samples or
events). `bench/bench_agreement.py` uses them against EyeLink's own parser and the synthetic truth.
"""
from __future__ import annotations

import numpy as np


def _bounds(events):
    """``(t_start, t_end)`` float arrays from a table with those columns (pyarrow or a dict of arrays) or an
    ``(n, 2)`` array-like of ``[t_start, t_end]`` rows."""
    names = getattr(events, "column_names", None) or (list(events) if isinstance(events, dict) else None)
    if names is not None and "t_start" in names and "t_end" in names:
        col = (lambda k: events[k].to_numpy()) if hasattr(events, "column_names") else (lambda k: events[k])
        return np.asarray(col("t_start"), np.float64).ravel(), np.asarray(col("t_end"), np.float64).ravel()
    arr = np.asarray(events, np.float64)
    if arr.size == 0:
        return np.zeros(0), np.zeros(0)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("events must have t_start and t_end columns or be an (n, 2) array of [t_start, t_end]")
    return arr[:, 0].copy(), arr[:, 1].copy()


def sample_labels(t, events) -> np.ndarray:
    """One bool per sample: True when ``t[i]`` lies inside any event, ``t_start <= t[i] <= t_end`` (both ends
    included: our tables and EyeLink's give the first and the last sample's time).

    ``events``: a table with ``t_start`` and ``t_end`` columns (e.g. `streamgaze.gaze.fixations.detect`'s) or an
    ``(n, 2)`` array. Events may overlap and come in any order; ``t`` need not be sorted. A NaN time is
    never inside. Cost: one sort of the events and one ``searchsorted`` of the samples.
    """
    t = np.asarray(t, np.float64).ravel()
    t0, t1 = _bounds(events)
    keep = np.isfinite(t0) & np.isfinite(t1) & (t1 >= t0)
    t0, t1 = t0[keep], t1[keep]
    if t0.size == 0 or t.size == 0:
        return np.zeros(t.size, bool)
    order = np.argsort(t0, kind="stable")
    t0 = t0[order]
    reach = np.maximum.accumulate(t1[order])  # furthest end among the events starting at or before each start
    k = np.searchsorted(t0, t, side="right") - 1  # last event starting at or before t (a NaN t fails the test below)
    inside = k >= 0
    with np.errstate(invalid="ignore"):
        inside &= t <= reach[np.maximum(k, 0)]
    return inside


def cohen_kappa(a, b, valid=None) -> float:
    """Cohen's kappa of two labellings of the same samples: ``(p_o - p_e) / (1 - p_e)``.

    ``a, b``: bool or integer labels (any number of classes), equal length. ``valid`` (optional bool mask):
    samples where it is False are left out (e.g. blinks, NaN gaze). p_o is the share of samples with the same
    label; p_e = sum over classes of (share of ``a`` in the class) x (share of ``b`` in the class).

    Defined edge cases: no sample left -> NaN; both labellings put every sample in one and the same class
    (p_e = 1, so also p_o = 1) -> NaN, because kappa is 0 / 0 there (agreement is perfect but nothing is
    beyond chance; report the raw agreement instead). When only one of them uses a single class, kappa is
    defined and <= 0 (e.g. 0 exactly when ``a`` is all True: agreement no better than chance).
    """
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    if a.size != b.size:
        raise ValueError(f"a and b must have the same length (got {a.size}, {b.size})")
    if valid is not None:
        v = np.asarray(valid, bool).ravel()
        if v.size != a.size:
            raise ValueError(f"valid must have the same length as a (got {v.size}, {a.size})")
        a, b = a[v], b[v]
    n = a.size
    if n == 0:
        return float("nan")
    classes, inv = np.unique(np.concatenate((a, b)), return_inverse=True)
    k = classes.size
    ia, ib = inv[:n], inv[n:]
    po = np.count_nonzero(ia == ib) / n
    pe = float(np.dot(np.bincount(ia, minlength=k), np.bincount(ib, minlength=k))) / (n * n)
    if pe >= 1.0:
        return float("nan")
    return float((po - pe) / (1.0 - pe))
