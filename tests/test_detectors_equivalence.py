"""The vectorised detectors against plain sequential references (obviously correct loops)."""
from __future__ import annotations

import numpy as np
import pytest

from streamgaze.fixations import detect


def reference_idt(t, x, y, ok, D, min_dur, min_samples, max_gap):
    """Salvucci I-DT as a loop: a start whose minimal window is clean and within D grows one sample at a time;
    a failed start moves on by one sample. Bad samples and gaps (t[j] - t[j-1] > max_gap) end windows."""
    n = t.size
    out = []

    def cap(i):  # first index an event starting at i may not reach
        if not ok[i]:
            return i
        j = i + 1
        while j < n and ok[j] and not (t[j] - t[j - 1] > max_gap):
            j += 1
        return j

    def disp(a, b):
        return (x[a:b].max() - x[a:b].min()) + (y[a:b].max() - y[a:b].min())

    i = 0
    while i < n:
        c = cap(i)
        w = i + min_samples
        while w - 1 < n and t[w - 1] - t[i] < min_dur - 1e-9:
            w += 1
        if ok[i] and w <= c and disp(i, w) <= D:
            e = w
            while e < c and disp(i, e + 1) <= D:
                e += 1
            out.append((i, e))
            i = e
        else:
            i += 1
    return out


def _median_dt(t):
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


@pytest.mark.parametrize("seed", range(8))
def test_idt_equals_sequential_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 1500))
    t = np.cumsum(rng.choice([0.008, 0.0085, 0.009, 0.2], n, p=[0.4, 0.3, 0.29, 0.01]))
    seg = np.cumsum(rng.random(n) < 0.03)
    c = rng.uniform(0, 1, (seg[-1] + 1, 2))
    drift = np.cumsum(rng.normal(0, 0.002, (2, n)), axis=1) * (rng.random() < 0.5)  # long slow drifts
    x = c[seg, 0] + rng.normal(0, 0.003, n) + drift[0]
    y = c[seg, 1] + rng.normal(0, 0.003, n) + drift[1]
    x[rng.random(n) < 0.02] = np.nan
    valid = rng.random(n) > 0.02
    D = float(rng.choice([0.01, 0.02, 0.05]))
    got = detect(t, x, y, valid, detector="idt", dispersion_units=D)
    ok = np.isfinite(x) & np.isfinite(y) & valid
    ref = reference_idt(t, x, y, ok, D, 0.08, 3, max(0.1, 2.5 * _median_dt(t)))
    assert list(zip(got["start_idx"].to_pylist(), got["end_idx"].to_pylist())) == ref


def test_idt_long_fixations_and_uneven_window_lengths():
    """Long fixations (growth past several doubling blocks) and window lengths that vary with the jitter."""
    rng = np.random.default_rng(11)
    n = 6000
    t = np.cumsum(rng.uniform(0.004, 0.006, n))
    seg = np.repeat(np.arange(6), 1000)
    x = seg * 0.1 + rng.normal(0, 0.002, n)
    y = 0.5 + rng.normal(0, 0.002, n)
    x[2500:2510] += np.linspace(0, 0.03, 10)  # a drift step inside one fixation
    got = detect(t, x, y, detector="idt", dispersion_units=0.05)
    ref = reference_idt(t, x, y, np.ones(n, bool), 0.05, 0.08, 3, max(0.1, 2.5 * _median_dt(t)))
    assert list(zip(got["start_idx"].to_pylist(), got["end_idx"].to_pylist())) == ref
    assert got.num_rows >= 6 and got["n_samples"].to_pylist()[:2] == [1000, 1000]


@pytest.mark.parametrize("seed", range(4))
def test_events_table_masks_invalid_samples_inside_events(seed):
    """streamgaze_dwell keeps invalid samples inside its segments: centroids and counts use the valid ones."""
    rng = np.random.default_rng(seed)
    n = 3000
    t = np.arange(n) / 30
    seg = np.cumsum(rng.random(n) < 0.01)
    c = rng.uniform(0.2, 0.8, (seg[-1] + 1, 2))
    x, y = c[seg, 0] + rng.normal(0, 0.01, n), c[seg, 1] + rng.normal(0, 0.01, n)
    valid = rng.random(n) > 0.1
    x[~valid & (rng.random(n) < 0.5)] = np.nan
    fx = detect(t, x, y, valid, detector="ivt", min_samples=1, min_duration_ms=0.0, threshold_units_s=1.0)
    ok = np.isfinite(x) & valid
    for r in fx.to_pylist():
        s, e = r["start_idx"], r["end_idx"]
        assert r["n_samples"] == ok[s:e].sum()
        assert r["x"] == pytest.approx(x[s:e][ok[s:e]].mean())
    from streamgaze.fixations import events_table

    s = np.array([0, 100, 2000]), np.array([50, 900, 3000])
    tb = events_table(t, x, y, ok, *s)
    for (a, b), r in zip(zip(*s), tb.to_pylist()):
        assert r["n_samples"] == ok[a:b].sum()
        assert r["x"] == pytest.approx(x[a:b][ok[a:b]].mean()) and r["y"] == pytest.approx(y[a:b][ok[a:b]].mean())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("chunk", [7, 64, 1 << 14])
def test_idt_chunked_pass_equals_sequential_reference(seed, chunk, monkeypatch):
    """The good-start pass works in chunks: chunk boundaries, windows longer than a chunk, constant offsets
    (even sampling), uneven and duplicate timestamps (window lengths varying inside a chunk), gaps, invalid
    samples and several minimum durations / sample counts all give the sequential result."""
    import streamgaze_builtin.detectors as d

    monkeypatch.setattr(d, "IDT_CHUNK", chunk)
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 2500))
    kind = seed % 4
    if kind == 0:
        t = np.arange(n) / 200.0
    elif kind == 1:
        t = np.cumsum(rng.choice([0.0, 0.004, 0.005], n))  # duplicates
    elif kind == 2:
        t = np.cumsum(rng.uniform(0.001, 0.05, n))
    else:
        t = np.cumsum(rng.choice([0.008, 0.0085, 0.009, 0.2], n, p=[0.4, 0.3, 0.29, 0.01]))
    seg = np.cumsum(rng.random(n) < 0.02)
    c = rng.uniform(0, 1, (seg[-1] + 1, 2))
    x = c[seg, 0] + rng.normal(0, 0.003, n)
    y = c[seg, 1] + rng.normal(0, 0.003, n)
    x[rng.random(n) < float(rng.choice([0.0, 0.02, 0.2]))] = np.nan
    valid = rng.random(n) > 0.01
    D = float(rng.choice([0.005, 0.02, 0.05]))
    min_ms = float(rng.choice([20.0, 80.0, 300.0]))
    min_s = int(rng.choice([1, 3, 10]))
    got = detect(t, x, y, valid, detector="idt", dispersion_units=D, min_duration_ms=min_ms, min_samples=min_s)
    ok = np.isfinite(x) & np.isfinite(y) & valid
    ref = reference_idt(t, x, y, ok, D, min_ms / 1000.0, min_s, max(0.1, 2.5 * _median_dt(t)))
    assert list(zip(got["start_idx"].to_pylist(), got["end_idx"].to_pylist())) == ref
