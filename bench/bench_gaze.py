"""Benchmark (a script, not a test): I-VT on 10 M in-memory samples, and ingest of a large Pupil Player CSV.

    /work/venv/bin/python bench/bench_gaze.py [--samples 10000000] [--rows 2000000]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.fixations import detect  # noqa: E402
from streamgaze.ingest import ingest  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    args = ap.parse_args()

    t, x, y = scanpath(args.samples)
    detect(t[:1000], x[:1000], y[:1000])  # warm-up (plugin loading)
    t0 = time.perf_counter()
    fx = detect(t, x, y)
    dt = time.perf_counter() - t0
    print(f"ivt: {args.samples:,} samples in {dt:.2f} s = {args.samples / dt:,.0f} samples/s ({fx.num_rows:,} fixations)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rec"
        folder.mkdir()
        t0 = time.perf_counter()
        write_pupil_csv(folder, args.rows)
        size = (folder / "gaze_positions.csv").stat().st_size / 1e6
        print(f"(wrote a {size:.0f} MB gaze_positions.csv in {time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        summary = ingest(Path(tmp) / "s.duckdb", "pupil-player", [folder])
        dt = time.perf_counter() - t0
        print(f"ingest pupil-player: {args.rows:,} rows in {dt:.2f} s = {args.rows / dt:,.0f} rows/s")
        print(f"  {summary}")


if __name__ == "__main__":
    main()
