"""The vectorised detectors against plain sequential references (obviously correct loops)."""
from __future__ import annotations

import numpy as np
import pytest

from streamgaze.gaze.fixations import detect


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
    from streamgaze.gaze.fixations import events_table

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
    import streamgaze_builtin.detectors.idt as d

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


# ---------------------------------------------------------------------------------------------------------
# I-VT: the fused chunked pass (usability, range check, speed test, one-sided fixes) against a plain loop


def reference_ivt(t, x, y, ok, thr, aspect, min_dur, min_samples, max_gap, half=1):
    """I-VT as a loop: per usable sample the speed between the ends of the span [i - half, i + half], walked
    out only over usable samples (half = 1: the central difference, else the forward step, else the backward
    one), when the later end has a later time; runs of speed < thr split at time gaps; runs kept when long
    enough in samples and in time."""
    n = t.size
    slow = []
    for i in range(n):
        v = None
        if ok[i]:
            j1 = j2 = i
            while j1 > max(i - half, 0) and ok[j1 - 1]:
                j1 -= 1
            while j2 < min(i + half, n - 1) and ok[j2 + 1]:
                j2 += 1
            if j2 > j1 and t[j2] - t[j1] > 0:
                v = np.hypot(x[j2] - x[j1], (y[j2] - y[j1]) * aspect) / (t[j2] - t[j1])
        slow.append(v is not None and v < thr)
    out, i = [], 0
    while i < n:
        if not slow[i]:
            i += 1
            continue
        j = i + 1
        while j < n and slow[j] and not (t[j] - t[j - 1] > max_gap):
            j += 1
        if j - i >= min_samples and t[j - 1] - t[i] >= min_dur - 1e-9:
            out.append((i, j))
        i = j
    return out


def _half_span(t, window_ms=20.0):
    """IVT's default speed window in samples either side: half of 20 ms in median steps, at least 1."""
    dt = _median_dt(t)
    return max(1, int(np.floor(window_ms / 2000.0 / dt + 0.5))) if dt > 0 else 1


def _ivt_case(rng, n):
    kind = int(rng.integers(4))
    if kind == 0:
        t = np.arange(n) / 200.0
    elif kind == 1:
        t = np.cumsum(rng.choice([0.0, 0.004, 0.005], n))  # duplicate timestamps
    elif kind == 2:
        t = np.cumsum(rng.uniform(0.001, 0.02, n))
    else:
        t = np.cumsum(rng.choice([0.008, 0.0085, 0.009, 0.2], n, p=[0.4, 0.3, 0.29, 0.01]))  # gaps
    seg = np.cumsum(rng.random(n) < 0.03)
    c = rng.uniform(0.1, 0.9, (seg[-1] + 1, 2))
    x = c[seg, 0] + rng.normal(0, 0.002, n)
    y = c[seg, 1] + rng.normal(0, 0.002, n)
    p_nan = float(rng.choice([0.0, 0.01, 0.1, 0.5]))
    x[rng.random(n) < p_nan] = np.nan
    y[rng.random(n) < p_nan / 4] = np.inf
    if n > 4 and rng.random() < 0.5:  # not-ok samples at and next to the ends, runs of them
        x[: int(rng.integers(1, 3))] = np.nan
        x[n - int(rng.integers(1, 3)):] = np.nan
    if n > 10 and rng.random() < 0.3:
        t[int(rng.integers(n))] = np.nan
    valid = rng.random(n) > float(rng.choice([0.0, 0.02, 0.3]))
    return t, x, y, valid


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("chunk", [5, 64, 1 << 14])
def test_ivt_fused_pass_equals_sequential_reference(seed, chunk, monkeypatch):
    """Chunk boundaries (not-ok samples just before / after / on them), the ends, runs of not-ok samples,
    NaN and inf in x / y / t, invalid samples, duplicate timestamps, gaps, aspect and thresholds."""
    from streamgaze.gaze.fixations import detection
    from streamgaze.gaze.fixations.ivt import numpy_pass

    monkeypatch.setattr(numpy_pass, "CHUNK", chunk)  # the fused pass's chunks
    monkeypatch.setattr(detection, "CHUNK", chunk)  # first_decrease's (check_times)
    monkeypatch.setenv("STREAMGAZE_COMPILED", "0")  # the numpy pass (the compiled loop: tests below)
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 3000)) if seed else 3
    t, x, y, valid = _ivt_case(rng, n)
    thr = float(rng.choice([0.2, 0.5, 2.0]))
    aspect = float(rng.choice([1.0, 0.75]))
    min_ms, min_s = float(rng.choice([0.0, 20.0, 60.0])), int(rng.choice([1, 3]))
    got = detect(t, x, y, valid, threshold_units_s=thr, aspect=aspect, min_duration_ms=min_ms, min_samples=min_s)
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y) & valid
    ref = reference_ivt(t, x, y, ok, thr, aspect, min_ms / 1000.0, min_s, max(0.1, 2.5 * _median_dt(t)),
                        _half_span(t))
    assert list(zip(got["start_idx"].to_pylist(), got["end_idx"].to_pylist())) == ref
    for r in got.to_pylist():  # events hold ok samples only; centroids over them
        s, e = r["start_idx"], r["end_idx"]
        assert ok[s:e].all() and r["n_samples"] == e - s and r["x"] == pytest.approx(x[s:e].mean())


@pytest.mark.parametrize("compiled", ["0", "1"])
@pytest.mark.parametrize("seed", range(6))
def test_ivt_fused_path_equals_mask_path(seed, compiled, monkeypatch):
    """`detect`'s fused path (IVT.fused) gives exactly the table of the generic path (full mask, __call__),
    with the options that use the mask afterwards (merge) and the one that falls back (gap fill)."""
    from streamgaze.gaze.fixations import events_table, get_detector
    from streamgaze.gaze.fixations.detection import _as_arrays

    monkeypatch.setenv("STREAMGAZE_COMPILED", compiled)  # the numpy pass, then the compiled loop when built
    rng = np.random.default_rng(400 + seed)
    t, x, y, valid = _ivt_case(rng, 20000)
    det = get_detector("ivt")
    for params in ({}, {"merge_ms": 75.0, "aspect": 0.75}, {"gap_fill_ms": 75.0}, {"threshold_units_s": 0.3}):
        got = detect(t, x, y, valid, **params)
        tt, xx, yy, ok, _ = _as_arrays(t, x, y, valid)
        s, e = det(tt, xx, yy, ok, deg_per_unit=82.0, **params) if ok.any() else (np.zeros(0, int),) * 2
        assert got.equals(events_table(tt, xx, yy, ok, np.asarray(s, np.int64), np.asarray(e, np.int64)))


def test_ivt_usability_of_huge_finite_values_and_pixel_check():
    """ok = finite t, x, y: x + y + t overflowing for huge finite values is re-checked, not taken as missing;
    the pixel check looks at the ok samples only (values > 2 at NaN-time or invalid samples are ignored)."""
    from streamgaze.errors import StreamGazeError
    from streamgaze.gaze.fixations import ivt_pass

    n = 200
    t = np.arange(n) / 100
    x = np.full(n, 1e308)
    y = np.full(n, 1e308)
    slow, gaps, bad, big = ivt_pass(t, x, y, None, 1.0, want_range=True)
    assert bad.size == 0 and slow.all() and big == 1e308
    x[50] = np.inf
    assert ivt_pass(t, x, y, None, 1.0)[2].tolist() == [50]
    x, y = np.full(n, 0.5), np.full(n, 0.5)
    x[10], t[20], y[30] = 300.0, np.nan, -5.0
    valid = np.ones(n, bool)
    valid[[10, 30]] = False
    assert detect(t, x, y, valid).num_rows == 4  # split at 10, 20, 30; no pixel error
    valid[30] = True
    with pytest.raises(StreamGazeError, match="deg_per_unit"):
        detect(t, x, y, valid)
    assert detect(t, x, y, valid, deg_per_unit=0.1).num_rows >= 1


# ---------------------------------------------------------------------------------------------------------
# I-VT: the compiled loop (streamgaze.gaze.fixations.ivt.loop, Cython) against the numpy path and the plain loop


def _both_paths(monkeypatch, t, x, y, valid, **params):
    """`detect`'s table through the numpy path and through the compiled loop."""
    monkeypatch.setenv("STREAMGAZE_COMPILED", "0")
    numpy_table = detect(t, x, y, valid, **params)
    monkeypatch.delenv("STREAMGAZE_COMPILED")
    return numpy_table, detect(t, x, y, valid, **params)


@pytest.mark.parametrize("seed", range(40))
def test_ivt_compiled_equals_numpy_path_and_reference(seed, monkeypatch):
    """Same events and the same centroid bits (numpy's pairwise sums) as the numpy path; same events as the
    loop; NaN / inf in t, x, y, invalid samples, duplicate timestamps, gaps, ends, aspect and thresholds."""
    pytest.importorskip("streamgaze.gaze.fixations.ivt.loop")
    rng = np.random.default_rng(700 + seed)
    n = int(rng.integers(1, 3000)) if seed > 2 else seed + 1  # 1, 2 and 3 samples too
    t, x, y, valid = _ivt_case(rng, n)
    valid = valid if rng.random() < 0.7 else None
    thr = float(rng.choice([0.2, 0.5, 2.0]))
    aspect = float(rng.choice([1.0, 0.75]))
    min_ms, min_s = float(rng.choice([0.0, 20.0, 60.0])), int(rng.choice([1, 3]))
    window = float(rng.choice([0.0, 20.0, 45.0, 120.0]))  # speed spans of 1 to ~10 samples either side
    params = dict(threshold_units_s=thr, aspect=aspect, min_duration_ms=min_ms, min_samples=min_s,
                  velocity_window_ms=window)
    numpy_table, compiled_table = _both_paths(monkeypatch, t, x, y, valid, **params)
    assert compiled_table.equals(numpy_table)
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y) & (True if valid is None else valid)
    ref = reference_ivt(t, x, y, ok, thr, aspect, min_ms / 1000.0, min_s, max(0.1, 2.5 * _median_dt(t)),
                        _half_span(t, window))
    assert list(zip(compiled_table["start_idx"].to_pylist(), compiled_table["end_idx"].to_pylist())) == ref


@pytest.mark.parametrize("length", [7, 8, 9, 128, 129, 130, 137, 1000, 5000, 70001])
def test_ivt_compiled_centroids_of_long_fixations_are_numpys_sums(length, monkeypatch):
    """Fixations longer than numpy's 128-value pairwise blocks (the sum's tree walked with a stack)."""
    pytest.importorskip("streamgaze.gaze.fixations.ivt.loop")
    rng = np.random.default_rng(length)
    n = 3 * length + 10
    t = np.arange(n) / 1000.0
    seg = (np.arange(n) // (length + 3)).astype(float)  # fixations of length + 3 samples, then a jump
    x = 0.1 + 0.3 * seg + rng.normal(0, 1e-5, n)  # values whose sums round differently in different orders
    y = 0.5 + rng.normal(0, 1e-5, n)
    numpy_table, compiled_table = _both_paths(monkeypatch, t, x, y, None, threshold_units_s=20.0, min_duration_ms=0.0,
                                              velocity_window_ms=0.0)
    assert numpy_table.num_rows >= 2 and max(numpy_table["n_samples"].to_pylist()) >= length
    assert compiled_table.equals(numpy_table)


def test_ivt_compiled_pixel_check_and_switch(monkeypatch):
    """The pixel check sees the compiled loop's range (usable samples only); STREAMGAZE_COMPILED=0 switches
    the loop off."""
    pytest.importorskip("streamgaze.gaze.fixations.ivt.loop")
    from streamgaze.errors import StreamGazeError
    from streamgaze.gaze.fixations import compiled_ivt

    n = 1000
    t, x, y = np.arange(n) / 100, np.full(n, 0.5), np.full(n, 0.5)
    x[500] = 300.0
    with pytest.raises(StreamGazeError, match="deg_per_unit"):
        detect(t, x, y)
    valid = np.ones(n, bool)
    valid[500] = False  # the pixel-like value is not usable: no error, the fixation splits there
    assert detect(t, x, y, valid).num_rows == 2
    assert compiled_ivt() is not None
    monkeypatch.setenv("STREAMGAZE_COMPILED", "0")
    assert compiled_ivt() is None


@pytest.mark.parametrize("seed", range(8))
def test_ivt_compiled_parts_in_threads_give_the_same_table(seed, monkeypatch):
    """The compiled loop split over threads (parts end where no run goes on) equals the one-part result."""
    pytest.importorskip("streamgaze.gaze.fixations.ivt.loop")
    from streamgaze.gaze.fixations.ivt import parallel

    rng = np.random.default_rng(800 + seed)
    t, x, y, valid = _ivt_case(rng, int(rng.integers(50, 4000)))
    params = dict(threshold_units_s=0.5, min_samples=1, min_duration_ms=0.0, velocity_window_ms=[0.0, 60.0][seed % 2])
    one = detect(t, x, y, valid, **params)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 16)
    for threads in (2, 3, 7):
        monkeypatch.setattr(parallel, "COMPILED_THREADS", threads)
        assert detect(t, x, y, valid, **params).equals(one)


@pytest.mark.parametrize("seed", range(12))
def test_span_rule_with_neighbours_is_the_fused_pass(seed):
    """`span_slow_mask` (the rule stated in full-size numpy) with half span 1 decides every sample as the
    chunked `ivt_pass` does."""
    from streamgaze.gaze.fixations import ivt_pass, span_slow_mask

    rng = np.random.default_rng(900 + seed)
    t, x, y, valid = _ivt_case(rng, int(rng.integers(1, 3000)))
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y) & valid
    for aspect in (1.0, 0.75):
        slow = ivt_pass(t, x, y, valid, 0.5, aspect=aspect)[0]
        assert np.array_equal(span_slow_mask(t, x, y, ok, 0.5, 1, aspect=aspect), slow)


@pytest.mark.parametrize("seed", range(16))
def test_ivt_compiled_names_the_same_decreasing_sample_as_first_decrease(seed, monkeypatch):
    """The compiled loop finds the first time below an earlier one on the way (per thread part, then joined);
    it must name the sample `first_decrease` names, NaN times and part cuts anywhere."""
    pytest.importorskip("streamgaze.gaze.fixations.ivt.loop")
    import streamgaze.gaze.fixations as F
    from streamgaze.errors import StreamGazeError
    from streamgaze.gaze.fixations.ivt import parallel

    rng = np.random.default_rng(1200 + seed)
    n = int(rng.integers(20, 3000))
    t, x, y, valid = _ivt_case(rng, n)
    t[rng.random(n) < 0.05] = np.nan
    k = int(rng.integers(1, n))
    t[k] = t[int(rng.integers(0, k))] - float(rng.choice([0.0, 1e-9, 0.5]))  # maybe not a decrease (0.0)
    want = F.first_decrease(t)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 16)
    for threads in (1, 2, 5):
        monkeypatch.setattr(parallel, "COMPILED_THREADS", threads)
        for compiled in ("1", "0"):
            monkeypatch.setenv("STREAMGAZE_COMPILED", compiled)
            if want < 0:
                detect(t, x, y, valid, threshold_units_s=0.5)
            else:
                with pytest.raises(StreamGazeError, match=f"sample {want} at"):
                    detect(t, x, y, valid, threshold_units_s=0.5)
