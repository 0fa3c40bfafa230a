"""Benchmark (a script, not a test): ivt / idt on in-memory samples against peers measured in the same run
(pymovements' I-VT and I-DT, optional extra ``bench``; a plain numpy I-VT), and ingest of a large CSV.

    python bench/bench_gaze.py [--samples 10000000] [--peer-samples 200000] [--rows 2000000]

``ivt`` is `detect`'s default path: the compiled loop (`streamgaze.gaze.fixations.ivt.loop`) when it was built, as in
a normal install; ``ivt (numpy path)`` the same call with ``STREAMGAZE_COMPILED=0``. pymovements' I-VT is measured twice:
on the first ``--peer-samples`` samples (its best rate: fixed costs amortised, data in cache) and on the same
``--samples`` samples as ours (identical input).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.gaze.fixations import detect  # noqa: E402
from streamgaze.gaze.ingest import ingest  # noqa: E402


def scanpath(n: int, hz: float = 200.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / hz
    seg = np.cumsum(rng.random(n) < 1 / 60)  # a new fixation every ~0.3 s
    centres = rng.uniform(0.1, 0.9, (seg[-1] + 1, 2))
    x = centres[seg, 0] + rng.normal(0, 0.001, n)
    y = centres[seg, 1] + rng.normal(0, 0.001, n)
    x[rng.random(n) < 0.01] = np.nan
    return t, x, y


def write_pupil_csv(folder: Path, n: int) -> None:
    t, x, y = scanpath(n, hz=200.0, seed=1)
    t = t + 1000.0
    conf = np.full(n, 0.95)
    header = "gaze_timestamp,world_index,confidence,norm_pos_x,norm_pos_y\n"
    data = np.column_stack([t, np.arange(n) // 7, conf, x, 1 - y])
    with open(folder / "gaze_positions.csv", "w") as fh:
        fh.write(header)
        np.savetxt(fh, data, fmt=["%.6f", "%d", "%.2f", "%.6f", "%.6f"], delimiter=",", footer="", comments="")
    # trailing empty columns as in real exports are not needed for the reader
    (folder / "world_timestamps.csv").write_text("# timestamps [seconds],pts\n1000.0,0\n1000.033,1\n")


#: process-time rates (CPU seconds of this process, less sensitive to other jobs on a shared machine)
CPU_RATES: dict = {}


def rate(fn, n: int, repeat: int = 3, name: str | None = None) -> float:
    """Samples per second of the best of ``repeat`` runs (wall clock); the best process-time rate is kept in
    ``CPU_RATES[name]`` (single-threaded code: CPU time ~ wall time on an idle core)."""
    best = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    if name:
        CPU_RATES[name] = n / max(cpu, 1e-9)
    return n / best


def plain_numpy_ivt(t, x, y, thr=40.0 / 82.0, min_dur=0.06):
    """A straightforward numpy I-VT (the baseline the issue mentions): np.gradient speed, runs, duration."""
    v = np.hypot(np.gradient(x, t), np.gradient(y, t))
    slow = np.concatenate(([0], (v < thr).astype(np.int8), [0]))
    d = np.diff(slow)
    s, e = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = t[e - 1] - t[s] >= min_dur
    return s[keep], e[keep]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--peer-samples", type=int, default=200_000, help="samples given to the (slow) peers")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per measurement")
    args = ap.parse_args()
    R = args.repeat

    t, x, y = scanpath(args.samples)
    detect(t[:1000], x[:1000], y[:1000])  # warm-up (plugin loading)
    rates = {}
    for name in ("ivt", "idt"):
        rates[name] = rate(lambda: detect(t, x, y, detector=name), args.samples, R, name)
    os.environ["STREAMGAZE_COMPILED"] = "0"
    rates["ivt (numpy path)"] = rate(lambda: detect(t, x, y), args.samples, R, "ivt (numpy path)")
    del os.environ["STREAMGAZE_COMPILED"]
    from streamgaze.gaze.fixations import compiled_ivt

    ivt_path = "compiled loop" if compiled_ivt() is not None else "numpy path: the compiled loop was not built"
    n = args.peer_samples
    rates["numpy-ivt"] = rate(lambda: plain_numpy_ivt(t, x, y), args.samples, R, "numpy-ivt")
    try:
        import pymovements as pm

        from pymovements.transforms.numpy import pos2vel

        # the same samples as ours (the first n); the peers' timings include what ours includes: the
        # conversion to degrees and, for I-VT, the velocities (central difference, pymovements' 'neighbors',
        # like ours); ms timestamps are made outside the timing (pymovements wants integers)
        xn, yn = x[:n].copy(), y[:n].copy()
        ts = np.round(t[:n] * 1000).astype(np.int64)  # ms
        ts_all = np.round(t * 1000).astype(np.int64)

        def pm_ivt(xs=xn, ys=yn, tms=ts):
            pos = np.column_stack((xs, ys)) * 82.0  # degrees
            vel = pos2vel(pos, sampling_rate=200.0, method="neighbors")
            return pm.events.ivt(vel, tms, minimum_duration=60, velocity_threshold=40.0)

        def pm_idt():
            return pm.events.idt(np.column_stack((xn, yn)) * 82.0, ts, minimum_duration=80, dispersion_threshold=1.5)

        rates["pymovements-ivt"] = rate(pm_ivt, n, R, "pymovements-ivt")
        rates["pymovements-ivt, same input"] = rate(lambda: pm_ivt(x, y, ts_all), args.samples, max(1, R - 1),
                                                    "pymovements-ivt, same input")
        rates["pymovements-idt"] = rate(pm_idt, n, max(1, R - 1), "pymovements-idt")
        peer_v = getattr(pm, "__version__", "?")
    except ImportError:
        peer_v = None
        print("(pymovements not installed: pip install 'streamgaze[bench]'; ratios against numpy only)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rec"
        folder.mkdir()
        t0 = time.perf_counter()
        write_pupil_csv(folder, args.rows)
        size = (folder / "gaze_positions.csv").stat().st_size / 1e6
        print(f"(wrote a {size:.0f} MB gaze_positions.csv in {time.perf_counter() - t0:.1f} s)")
        best = float("inf")
        for i in range(max(1, R - 1)):
            store = Path(tmp) / f"s{i}.duckdb"
            t0 = time.perf_counter()
            summary = ingest(store, "pupil-player", [folder])
            best = min(best, time.perf_counter() - t0)
        rates["ingest pupil-player (rows/s)"] = args.rows / best

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.samples:,} samples ({n:,} for the pymovements peers), best of {R}, "
          f"{os.cpu_count()} cores, load average {load:.1f}, pymovements {peer_v}; ivt: {ivt_path}\n")
    print("| what | rate, wall (per s) | rate, process time (per s) |\n|---|---|---|")
    for k, v in rates.items():
        c = f"{CPU_RATES[k] / 1e6:.3g} M" if k in CPU_RATES else ""
        print(f"| {k} | {v / 1e6:.3g} M | {c} |")
    print("\n| ratio | wall | process time | target |\n|---|---|---|---|")
    for ours, peer, target in (("ivt", "pymovements-ivt", "20x"), ("ivt", "pymovements-ivt, same input", "20x"),
                               ("idt", "pymovements-idt", "100x"), ("ivt", "numpy-ivt", ""),
                               ("ivt (numpy path)", "pymovements-ivt", "")):
        if peer in rates:
            print(f"| {ours} / {peer} | {rates[ours] / rates[peer]:.1f}x | "
                  f"{CPU_RATES[ours] / CPU_RATES[peer]:.1f}x | {target} |")
    ing = rates["ingest pupil-player (rows/s)"]
    print(f"| ingest rows/s | {ing / 1e6:.2f} M | | 1 M |")
    print(f"\n  {summary}")


if __name__ == "__main__":
    main()
