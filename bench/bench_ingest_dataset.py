"""Dataset ingest speed: N Pupil Cloud recordings (default 300) of 3 minutes of 200 Hz gaze, through
``streamgaze ingest-dataset pupil-cloud`` with ``--jobs 1`` and ``--jobs 2`` in the same run.

Generating the folder tree (gaze.csv, world_timestamps.csv, scene_camera.json and a tiny 3-minute video per
recording) is not timed. Each timed run is the whole command in a fresh process into a new store: discovery,
hashing, parsing, probing, checks and the writes. Target: >= 1 M gaze rows/s overall on 2 cores, and --jobs 2
faster than --jobs 1. A third run (--jobs 2 again, same store) measures the rerun that skips unchanged recordings.
Run: python bench/bench_ingest_dataset.py [n_recordings] [--minutes M] [--keep DIR] [--repeat R]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

RATE_HZ = 200.0
VIDEO_FPS = 10.0
T0_NS = 1_700_000_000_000_000_000
HEADER = "section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn,fixation id,blink id,azimuth [deg],elevation [deg]\n"


def write_video(path: Path, seconds: float) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (32, 32))
    frame = np.zeros((32, 32, 3), np.uint8)
    for k in range(int(seconds * VIDEO_FPS)):
        frame[:] = k % 255
        out.write(frame)
    out.release()


def make_tree(root: Path, n: int, minutes: float, seed: int = 0) -> int:
    """The Pupil Cloud download layout: one folder per recording. Returns the number of gaze rows."""
    rng = np.random.default_rng(seed)
    seconds = minutes * 60
    video = root / "_video.mp4"
    root.mkdir(parents=True, exist_ok=True)
    write_video(video, seconds)
    n_rows = int(seconds * RATE_HZ)
    world = "section id,recording id,timestamp [ns]\n" + "".join(
        f"s,r,{T0_NS + int(k * 1e9 / VIDEO_FPS)}\n" for k in range(int(seconds * VIDEO_FPS)))
    for i in range(n):
        rec = root / f"2025-01-01_00-00-00-{i:05d}"
        rec.mkdir()
        t = T0_NS + (np.arange(n_rows) * (1e9 / RATE_HZ)).astype(np.int64)
        x = np.clip(800 + np.cumsum(rng.normal(0, 3, n_rows)), 0, 1600)
        y = np.clip(600 + np.cumsum(rng.normal(0, 3, n_rows)), 0, 1200)
        worn = (rng.random(n_rows) > 0.02).astype(int)
        body = np.char.add(np.char.add(np.char.add("s,r,", t.astype(str)), ","),
                           np.char.add(np.char.add(np.char.mod("%.2f", x), ","),
                                       np.char.add(np.char.add(np.char.mod("%.2f", y), ","),
                                                   np.char.add(worn.astype(str), ",,,0,0"))))
        (rec / "gaze.csv").write_text(HEADER + "\n".join(body) + "\n")
        (rec / "world_timestamps.csv").write_text(world)
        (rec / "scene_camera.json").write_text('{"camera_matrix": [[890, 0, 800], [0, 890, 600], [0, 0, 1]]}')
        shutil.copyfile(video, rec / "scene.mp4")
    video.unlink()
    return n * n_rows


def timed(root: Path, store: Path, jobs: int) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system of the command and its workers) and the command's last line."""
    env = {**os.environ, "STREAMGAZE_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "streamgaze.cli", "ingest-dataset", "pupil-cloud", str(root), "--store", str(store),
           "--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed: {res.stderr.strip() or res.stdout[-2000:]}")
    last = [line for line in res.stdout.splitlines() if line.startswith("ingested ")]
    return elapsed, cpu, last[-1] if last else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=300, help="recordings (default 300)")
    ap.add_argument("--minutes", type=float, default=3.0, help="length of each recording (default 3)")
    ap.add_argument("--keep", type=Path, help="make the tree here and keep it (a kept tree of the same size is reused)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating --jobs 1 / --jobs 2 runs (default 2; best kept)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sg-bench-ds-"))
    try:
        t = time.perf_counter()
        made = sorted((work / "data").glob("*/gaze.csv")) if (work / "data").is_dir() else []
        if made and len(made) == args.n and args.keep:  # a kept tree of the same size is reused
            rows = args.n * int(args.minutes * 60 * RATE_HZ)
            print(f"reusing {args.n} recordings, {rows:,} gaze rows in {work / 'data'}")
        else:
            shutil.rmtree(work / "data", ignore_errors=True)
            rows = make_tree(work / "data", args.n, args.minutes)
            print(f"generated {args.n} recordings, {rows:,} gaze rows in {time.perf_counter() - t:.1f} s (not timed)")
        for old in work.glob("store*.duckdb*"):
            old.unlink()
        print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
        results: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.repeat):  # alternated, so a change in the machine's load hits both alike
            for jobs in (1, 2):
                store = work / f"store{jobs}.duckdb"
                for old in work.glob(f"store{jobs}.duckdb*"):
                    old.unlink()
                elapsed, cpu, line = timed(work / "data", store, jobs)
                results[jobs].append(elapsed)
                # CPU time is exact for --jobs 1 (one process); the workers of --jobs 2 are not waited for by the
                # command itself, so getrusage misses them and only its wall time is shown
                cpu_note = f"; {cpu:6.2f} s CPU, {rows / cpu / 1e6:5.2f} M rows per CPU-second" if jobs == 1 else ""
                print(f"run {r + 1} --jobs {jobs}: {elapsed:6.2f} s wall, {rows / elapsed / 1e6:5.2f} M gaze rows/s"
                      f"{cpu_note}   [{line.split(' into ')[0]}]", flush=True)
        best = {jobs: min(times) for jobs, times in results.items()}
        elapsed, cpu, line = timed(work / "data", work / "store2.duckdb", 2)
        print(f"rerun, all unchanged (--jobs 2): {elapsed:6.2f} s wall   [{line.split(' into ')[0]}]")
        print(f"best of {args.repeat}: --jobs 1 {best[1]:.2f} s, --jobs 2 {best[2]:.2f} s; speed-up (wall) "
              f"{best[1] / best[2]:.2f}x; best {rows / min(best.values()) / 1e6:.2f} M rows/s (target >= 1.0)")
        print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share the cores)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
