"""Device-aware fixation defaults: the class each video gets from the store, what is said and recorded, the
user's parameters winning, and the head-mounted path left as it was."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.gaze.fixations import detect, get_detector, run_fixations
from streamgaze.gaze.fixations.device import (
    HEAD_MOUNTED,
    SCREEN,
    SCREEN_ASSUMED_WIDTH_DEG,
    class_defaults,
    device_class,
    gaze_rate_hz,
)
from streamgaze.gaze.geometry import DEFAULT_DEG_PER_UNIT
from streamgaze.gaze.ingest import ingest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def scanpath(hz: float, seconds: float = 8.0, seed: int = 0):
    """Fixations of 200-500 ms joined by 30 ms saccades, each followed by a damped oscillation (a PSO), plus
    noise; normalised coordinates. Returns t, x, y."""
    rng = np.random.default_rng(seed)
    xs, ts, pos, t = [], [], np.array([0.5, 0.5]), 0.0
    while t < seconds:
        n = int(rng.uniform(0.2, 0.5) * hz)
        xs.append(np.repeat(pos[None], n, 0))
        target = rng.uniform(0.2, 0.8, 2)
        k = max(2, int(0.03 * hz))
        s = (np.arange(1, k + 1) / k)[:, None]
        xs.append(pos + (target - pos) * (10 * s**3 - 15 * s**4 + 6 * s**5))
        m = int(0.024 * hz)
        tt = (np.arange(m) / hz)[:, None]
        xs.append(target + 0.01 * np.exp(-tt / 0.01) * np.cos(2 * np.pi * 22 * tt) * (target - pos))
        pos = target
        t += (n + k + m) / hz
    xy = np.concatenate(xs) + rng.normal(0, 0.0005, (sum(len(a) for a in xs), 2))
    return np.arange(len(xy)) / hz, xy[:, 0], xy[:, 1]


def store_with(tmp_path: Path, hz: float, name: str = "s") -> Path:
    t, x, y = scanpath(hz)
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "g.csv"
    csv.write_text("t_s,x,y\n" + "".join(f"{a:.6f},{b:.6f},{c:.6f}\n" for a, b, c in zip(t, x, y)))
    store = folder / "s.duckdb"
    ingest(store, "generic-csv", [csv], video_id="v")
    return store


def rows(store):
    with open_store(store, read_only=True) as s:
        return s.rows("SELECT fixation_id, t_start, t_end, x, y, n_samples, detector FROM fixations ORDER BY 1")


def test_the_class_rules_in_order():
    assert device_class(rate_hz=500.0).device == device_class(rate_hz=250.0).device == SCREEN
    assert device_class(rate_hz=500.0).device == SCREEN and device_class(rate_hz=500.0).reason == "500 Hz gaze"
    assert device_class(rate_hz=200.0).device == HEAD_MOUNTED
    assert device_class(rate_hz=None).device == HEAD_MOUNTED
    assert device_class(rate_hz=30.0, dataset="eyelink-edf").device == SCREEN  # a known format wins over the rate
    assert device_class(rate_hz=1000.0, dataset="pupil-player").device == HEAD_MOUNTED
    # a wide stored frame is a scene camera, whatever the rate; a screen-sized one leaves it to the rate
    assert device_class(rate_hz=500.0, deg_per_unit=132.2).device == HEAD_MOUNTED
    assert device_class(rate_hz=500.0, deg_per_unit=51.3).device == SCREEN
    assert device_class(rate_hz=500.0, dataset="pupil-player", given=SCREEN).reason == "given"
    assert gaze_rate_hz(np.arange(1000) / 500.0) == pytest.approx(500.0)
    assert gaze_rate_hz(np.array([1.0])) is None
    # the head-mounted class declares nothing: its path is the detectors' own defaults
    for name in ("ivt", "ivt_flow", "idt", "remodnav", "streamgaze_dwell"):
        assert class_defaults(get_detector(name), HEAD_MOUNTED) == {}


def test_screen_rate_store_gets_the_screen_defaults_said_and_recorded(tmp_path):
    store = store_with(tmp_path, 500.0)
    res = CliRunner().invoke(cli, ["fixations", "--store", str(store), "--param", "min_episode_s=0.1"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[1] == "device: screen for 1 video(s) (500 Hz gaze): ivt pso_ms=20"
    assert f"{SCREEN_ASSUMED_WIDTH_DEG:g} deg per screen width assumed" in lines[0]
    got = rows(store)
    assert {r["detector"] for r in got} == {"ivt [screen pso_ms=20]"}
    t, x, y = scanpath(500.0)
    want = detect(t, x, y, detector="ivt", deg_per_unit=SCREEN_ASSUMED_WIDTH_DEG, pso_ms=20.0)
    assert [r["n_samples"] for r in got] == want["n_samples"].to_pylist()
    np.testing.assert_allclose([r["t_start"] for r in got], want["t_start"].to_numpy(), atol=2e-6)
    # the PSO step moved fixation starts later than the head-mounted defaults put them
    plain = detect(t, x, y, detector="ivt", deg_per_unit=SCREEN_ASSUMED_WIDTH_DEG)
    assert plain.num_rows == want.num_rows
    assert (want["t_start"].to_numpy() - plain["t_start"].to_numpy()).max() == pytest.approx(0.02)


def test_the_users_parameters_and_device_win(tmp_path):
    store = store_with(tmp_path, 500.0)
    said = run_fixations(store, params={"min_episode_s": 0.1, "pso_ms": 0.0, "threshold_deg_s": 50.0})
    assert said.splitlines()[1] == ("device: screen for 1 video(s) (500 Hz gaze): ivt pso_ms=20; --param wins: "
                                    "pso_ms=0 threshold_deg_s=50")
    assert {r["detector"] for r in rows(store)} == {"ivt [screen pso_ms=0 threshold_deg_s=50]"}
    t, x, y = scanpath(500.0)
    want = detect(t, x, y, detector="ivt", deg_per_unit=SCREEN_ASSUMED_WIDTH_DEG, threshold_deg_s=50.0)
    assert [r["t_start"] for r in rows(store)] == pytest.approx(want["t_start"].to_pylist(), abs=2e-6)
    # --device head-mounted: the detector's own defaults and the 82 deg assumption, as before classes
    said = run_fixations(store, params={"min_episode_s": 0.1}, device=HEAD_MOUNTED)
    assert said.splitlines()[1] == "device: head-mounted for 1 video(s) (given): ivt defaults"
    want = detect(t, x, y, detector="ivt", deg_per_unit=DEFAULT_DEG_PER_UNIT)
    got = rows(store)
    assert {r["detector"] for r in got} == {"ivt"}
    assert [r["n_samples"] for r in got] == want["n_samples"].to_pylist()
    run_fixations(store, params={"min_episode_s": 0.1, "pso_ms": 10.0}, device=HEAD_MOUNTED)
    assert {r["detector"] for r in rows(store)} == {"ivt [head-mounted pso_ms=10]"}
    # a stored scale wins over the assumed screen width
    with open_store(store) as s, s.transaction():
        s.con.execute("INSERT INTO gaze_units VALUES ('v', 30.0, 0.5625, 'test')")
    said = run_fixations(store, params={"min_episode_s": 0.1})
    assert "assumed" not in said.splitlines()[0]
    with pytest.raises(InputError, match="unknown device class 'glasses'"):
        run_fixations(store, device="glasses")
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    res = CliRunner().invoke(cli, ["fixations", "--store", str(store), "--device", "glasses"])
    assert res.exit_code == 2 and hashlib.sha256(store.read_bytes()).hexdigest() == before


def test_head_mounted_path_unchanged(tmp_path):
    """A 120 Hz recording: the class is head-mounted and the table is exactly `detect` at its defaults."""
    store = store_with(tmp_path, 120.0)
    said = run_fixations(store, params={"min_episode_s": 0.1})
    assert said.splitlines()[1] == "device: head-mounted for 1 video(s) (120 Hz gaze): ivt defaults"
    with open_store(store, read_only=True) as st:
        g = st.rows("SELECT t_s, x, y, valid FROM gaze ORDER BY t_s")
    want = detect(*(np.array([r[k] for r in g]) for k in ("t_s", "x", "y", "valid")), detector="ivt")
    got = rows(store)
    assert {r["detector"] for r in got} == {"ivt"}
    assert [(r["t_start"], r["t_end"], r["n_samples"]) for r in got] == [
        (a, b, c) for a, b, c in zip(*(want[k].to_pylist() for k in ("t_start", "t_end", "n_samples")))]
    assert [r["x"] for r in got] == want["x"].to_pylist()


def test_known_dataset_and_the_shared_screen_recordings(tmp_path):
    """A videos row naming a screen format makes even a 120 Hz recording a screen one; the shared Tobii TX300
    file (300 Hz, no video) is a screen recording by its rate."""
    store = store_with(tmp_path, 120.0)
    with open_store(store) as s, s.transaction():
        s.con.execute("INSERT INTO videos VALUES ('v', 'tobii-tx300', NULL, NULL, 1920, 1080, NULL, NULL)")
    said = run_fixations(store, params={"min_episode_s": 0.1})
    assert said.splitlines()[1] == "device: screen for 1 video(s) (dataset tobii-tx300): ivt pso_ms=20"
    tsv = DATA / "tobii_tx300" / "participant1_1.tsv"
    if not tsv.exists():
        pytest.skip("shared Tobii fixture not present")
    tobii = tmp_path / "t.duckdb"
    ingest(tobii, "tobii-tx300", [tsv])
    said = run_fixations(tobii, params={"min_episode_s": 0.1})
    assert said.splitlines()[1] == "device: screen for 1 video(s) (298 Hz gaze): ivt pso_ms=20"


def test_pso_trim_gives_the_same_table_on_the_compiled_and_numpy_paths(monkeypatch):
    t, x, y = scanpath(500.0, seconds=6.0, seed=3)
    valid = np.ones(t.size, bool)
    valid[1000:1040] = False
    x[2000:2005] = np.nan
    fast = detect(t, x, y, valid, detector="ivt", deg_per_unit=40.0, pso_ms=20.0)
    monkeypatch.setenv("STREAMGAZE_COMPILED", "0")
    slow = detect(t, x, y, valid, detector="ivt", deg_per_unit=40.0, pso_ms=20.0)
    assert fast.num_rows == slow.num_rows > 5
    assert fast.equals(slow)  # bit for bit, as for every ivt option the loop runs
    # a fixation after missing data (or at the start) keeps its first samples: no saccade came before it
    plain = detect(t, x, y, valid, detector="ivt", deg_per_unit=40.0)
    after_gap = [s for s in plain["start_idx"].to_pylist() if s == 0 or not valid[s - 1] or np.isnan(x[s - 1])]
    assert after_gap and set(after_gap) <= set(fast["start_idx"].to_pylist())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), pso_ms=st.sampled_from([4.0, 20.0, 60.0]),
       min_samples=st.sampled_from([0, 1, 3]), min_duration_ms=st.sampled_from([0.0, 60.0]),
       threads=st.sampled_from([1, 2, 3]))
def test_pso_trim_property_compiled_numpy_and_splits_agree(monkeypatch, seed, pso_ms, min_samples,
                                                             min_duration_ms, threads):
    """Random 500 Hz traces with lost samples, NaN, time gaps and repeated times: the compiled loop, split in
    1-3 parts, and the numpy path give the same table."""
    from streamgaze.gaze.fixations.ivt import parallel

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    t = np.cumsum(rng.choice([0.002, 0.002, 0.002, 0.0, 0.3], n, p=[0.6, 0.3, 0.07, 0.02, 0.01]))
    x = np.cumsum(rng.normal(0, 0.003, n)) + np.where(rng.random(n) < 0.02, rng.normal(0, 0.05, n), 0)
    y = np.cumsum(rng.normal(0, 0.003, n))
    x[rng.random(n) < 0.01] = np.nan
    valid = rng.random(n) > 0.02
    params = dict(detector="ivt", deg_per_unit=40.0, pso_ms=pso_ms, min_samples=min_samples,
                  min_duration_ms=min_duration_ms)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 16)
    monkeypatch.setattr(parallel, "COMPILED_THREADS", threads)
    fast = detect(t, x, y, valid, **params)
    monkeypatch.setenv("STREAMGAZE_COMPILED", "0")
    slow = detect(t, x, y, valid, **params)
    assert fast.equals(slow)
    assert all(e > s for s, e in zip(fast["start_idx"].to_pylist(), fast["end_idx"].to_pylist()))
