"""The optional ``remodnav`` detector: the missing-package message, and (when installed) the adapter for real:
units, NaN edges, tiny / all-NaN input, uneven timestamps, pursuit, low rates, invalid samples."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from streamgaze.gaze.agreement import cohen_kappa, sample_labels
from streamgaze.cli import cli
from streamgaze.errors import StreamGazeError
from streamgaze.gaze.fixations import detect
from streamgaze.gaze.ingest import ingest

PPD = 30.0  # pixels per degree of the synthetic screen


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def scanpath(seed=0, hz=500.0, n_fix=25, noise_px=1.0, pursuit_at=None):
    """Pixel gaze: fixations of 200-500 ms joined by 40 ms minimum-jerk saccades (5-15 deg); optionally one
    1 s pursuit at 8 deg/s after fixation ``pursuit_at``. Returns t, x, y and the true stable-gaze labels."""
    rng = np.random.default_rng(seed)
    xs, ys, st = [], [], []
    pos = np.array([960.0, 540.0])
    for i in range(n_fix):
        amp = rng.uniform(5, 15) * PPD
        ang = rng.uniform(0, 2 * np.pi)
        target = np.clip(pos + amp * np.array([np.cos(ang), np.sin(ang)]), 100, [1820, 980])
        k = int(0.04 * hz)
        s = np.arange(1, k + 1) / (k + 1)
        prof = 10 * s**3 - 15 * s**4 + 6 * s**5
        path = pos + (target - pos) * prof[:, None]
        xs.append(path[:, 0]), ys.append(path[:, 1]), st.append(np.zeros(k, bool))
        m = int(rng.uniform(0.2, 0.5) * hz)
        xs.append(np.full(m, target[0])), ys.append(np.full(m, target[1])), st.append(np.ones(m, bool))
        pos = target
        if pursuit_at == i:
            m = int(hz)
            xs.append(pos[0] + 8 * PPD * np.arange(1, m + 1) / hz), ys.append(np.full(m, pos[1]))
            st.append(np.ones(m, bool))
            pos = np.array([xs[-1][-1], pos[1]])
    x, y, stable = np.concatenate(xs), np.concatenate(ys), np.concatenate(st)
    x = x + rng.normal(0, noise_px, x.size)
    y = y + rng.normal(0, noise_px, y.size)
    return np.arange(x.size) / hz, x, y, stable


def test_plugin_registered_as_builtin():
    from streamgaze.plugins.manager import registry

    entry = registry("fixation_detectors")["remodnav"]
    assert entry.source.plugin == "builtin_detectors"
    assert {"pursuit", "resample", "sampling_rate", "min_fixation_duration"} <= set(entry.obj.defaults)


def test_missing_package_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "remodnav", None)  # import remodnav -> ImportError
    monkeypatch.setitem(sys.modules, "remodnav.clf", None)
    t, x, y, _ = scanpath(n_fix=3)
    with pytest.raises(StreamGazeError, match=r"pip install 'streamgaze\[remodnav\]'"):
        detect(t, x, y, detector="remodnav", deg_per_unit=1 / PPD)
    # on the command line: exit 2, one line, nothing written
    p = tmp_path / "g.csv"
    t = np.arange(300) / 100.0
    p.write_text("t_s,x,y\n" + "".join(f"{a:.4f},0.5,0.5\n" for a in t))
    store = tmp_path / "s.duckdb"
    ingest(store, "generic-csv", [p], video_id="v")
    before = store.read_bytes()
    res = CliRunner().invoke(cli, ["fixations", "--store", str(store), "--detector", "remodnav"])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "streamgaze[remodnav]" in res.output
    assert store.read_bytes() == before


needs_remodnav = pytest.mark.skipif(
    __import__("importlib").util.find_spec("remodnav") is None, reason="remodnav not installed (streamgaze[remodnav])")


@needs_remodnav
def test_recovers_fixations_in_pixels():
    t, x, y, stable = scanpath()
    tbl = detect(t, x, y, detector="remodnav", deg_per_unit=1 / PPD)
    lab = sample_labels(t, tbl)
    assert cohen_kappa(lab, stable) > 0.8
    s, e = tbl["start_idx"].to_numpy(), tbl["end_idx"].to_numpy()
    assert np.all(e > s) and np.all(s[1:] >= e[:-1])
    # same result in normalised units (y scaled by aspect) as in pixels: only px2deg * distance matters
    tn = detect(t, x / 1920, y / 1080, detector="remodnav", deg_per_unit=1920 / PPD, aspect=1080 / 1920)
    assert tn["start_idx"].to_pylist() == s.tolist() and tn["end_idx"].to_pylist() == e.tolist()


@needs_remodnav
def test_nan_edges_are_trimmed_not_fatal():
    t, x, y, stable = scanpath(n_fix=12)
    x, y = x.copy(), y.copy()
    x[:40] = np.nan  # leading NaN run
    y[-25:] = np.nan  # trailing NaN run
    x[60] = np.nan  # a NaN inside the savgol window next to the trimmed edge
    x[-40] = np.nan
    valid = np.ones(t.size, bool)
    valid[200:210] = False  # invalid samples in the middle split events
    tbl = detect(t, x, y, valid, detector="remodnav", deg_per_unit=1 / PPD)
    assert tbl.num_rows > 5
    ok = np.isfinite(x) & np.isfinite(y) & valid
    for s, e in zip(tbl["start_idx"].to_pylist(), tbl["end_idx"].to_pylist()):
        assert ok[s:e].all(), (s, e)
        assert not (s < 205 < e)
    judged = ok
    assert cohen_kappa(sample_labels(t, tbl), stable, judged) > 0.75


@needs_remodnav
def test_tiny_and_all_nan_input_give_empty_tables():
    for n in (1, 2, 3, 5, 9):
        t = np.arange(n) / 500.0
        tbl = detect(t, np.full(n, 100.0), np.full(n, 100.0), detector="remodnav", deg_per_unit=1 / PPD)
        assert tbl.num_rows == 0 and "start_idx" in tbl.column_names
    t = np.arange(200) / 500.0
    x = np.full(200, np.nan)
    x[100] = 5.0  # one finite sample in a sea of NaN
    tbl = detect(t, x, np.full(200, 5.0), detector="remodnav", deg_per_unit=1 / PPD)
    assert tbl.num_rows == 0
    nan = np.full(200, np.nan)
    assert detect(t, nan, nan, detector="remodnav", deg_per_unit=1 / PPD).num_rows == 0


@needs_remodnav
def test_uneven_timestamps_resampled_or_rejected():
    t, x, y, stable = scanpath(seed=3, n_fix=15)
    jit = t + np.random.default_rng(4).uniform(-0.4, 0.4, t.size) / 500.0  # +-20 % of an interval, still increasing
    jit = np.maximum.accumulate(jit)
    tbl = detect(jit, x, y, detector="remodnav", deg_per_unit=1 / PPD)
    assert cohen_kappa(sample_labels(jit, tbl), stable) > 0.8
    with pytest.raises(StreamGazeError, match="constant sampling rate"):
        detect(jit, x, y, detector="remodnav", deg_per_unit=1 / PPD, resample=False)
    # dropped rows (a 50 ms hole) are resampled too, the hole left as missing data
    keep = np.ones(t.size, bool)
    keep[1000:1025] = False
    tbl = detect(t[keep], x[keep], y[keep], detector="remodnav", deg_per_unit=1 / PPD)
    assert tbl.num_rows > 5
    tt = t[keep]
    spans = zip(tbl["t_start"].to_pylist(), tbl["t_end"].to_pylist())
    assert not any(a < tt[1000] - 0.01 and b > tt[999] + 0.01 for a, b in spans)  # no event across the hole
    with pytest.raises(StreamGazeError, match="must not decrease"):
        detect(t[::-1], x, y, detector="remodnav", deg_per_unit=1 / PPD)


@needs_remodnav
def test_pursuit_counts_as_stable_unless_turned_off():
    t, x, y, stable = scanpath(seed=5, n_fix=8, pursuit_at=3)
    both = sample_labels(t, detect(t, x, y, detector="remodnav", deg_per_unit=1 / PPD))
    fixa = sample_labels(t, detect(t, x, y, detector="remodnav", deg_per_unit=1 / PPD, pursuit=False))
    assert not (fixa & ~both).any()  # FIXA only is a subset
    assert (both & ~fixa).sum() > 200  # the 1 s pursuit (500 samples) is mostly PURS
    assert cohen_kappa(both, stable) > cohen_kappa(fixa, stable)


@needs_remodnav
def test_low_rates():
    # 30 Hz: the savgol window (< 3 samples) is turned off and REMoDNaV runs; its quality there is poor (a
    # 40 ms saccade is one sample, its onset/offset search widens it), so only "runs and finds events" is checked
    t, x, y, stable = scanpath(seed=6, hz=30.0, n_fix=30)
    tbl = detect(t, x, y, detector="remodnav", deg_per_unit=1 / PPD)
    assert tbl.num_rows > 10
    assert cohen_kappa(sample_labels(t, tbl), stable) > 0.0
    t5 = np.arange(100) / 5.0
    with pytest.raises(StreamGazeError, match="too low"):
        detect(t5, np.full(100, 9.0), np.full(100, 9.0), detector="remodnav", deg_per_unit=1 / PPD)
