"""Generation speed: all ten tasks over a store of N synthetic timelines (default 1,000); target <= 30 s on 2 cores.

Timelines are written straight into the store (no videos): each is a shuffled kitchen world of 20-40 episodes
with gazed / fov / outside names, attributes and actions, drawn from a seeded generator.
Run: python bench/bench_generate.py [n_videos] [--profile]. Prints build time, generation time and questions/s.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from streamgaze.tasks.generate import generate, write_outputs  # noqa: E402
from streamgaze.tasks.spec import load_task_specs  # noqa: E402
from streamgaze.store import open_store  # noqa: E402

NAMES = ["knife", "cutting board", "tomato", "bowl", "spoon", "kettle", "mug", "fridge", "sink", "toaster", "plate",
         "sponge", "teabag", "pan", "pot", "fork", "cup", "jar", "bottle", "onion", "carrot", "lid", "towel", "oven",
         "stove", "cabinet", "drawer", "egg", "bread", "butter", "cheese", "milk", "glass", "scissors", "tongs"]
COLORS = ["red", "blue", "green", "yellow", "black", "white", "silver", "brown", "orange", "purple"]
MATERIALS = ["metal", "plastic", "wood", "glass", "ceramic", "paper"]
VERBS = ["take", "put", "cut", "wash", "open", "close", "pour", "stir", "fill", "move"]


def build_store(path: Path, n_videos: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    videos, episodes, objects, actions = [], [], [], []
    attrs = {n: json.dumps({"color": COLORS[i % len(COLORS)], "material": MATERIALS[i % len(MATERIALS)]}) for i, n in enumerate(NAMES)}
    for v in range(n_videos):
        vid = f"v{v:05d}"
        n_eps = int(rng.integers(20, 41))
        t = float(rng.uniform(1, 5))
        for k in range(n_eps):
            dur = round(float(rng.uniform(2.5, 6.0)), 3)
            eid = f"e{k + 1}"
            episodes.append((vid, eid, round(t, 3), round(t + dur, 3)))
            picks = rng.choice(len(NAMES), size=int(rng.integers(4, 9)), replace=False)
            n_fov = int(rng.integers(1, 3))
            for j, idx in enumerate(picks):
                role = "gazed" if j == 0 else ("fov" if j <= n_fov else "outside")
                objects.append((vid, eid, NAMES[idx], role, attrs[NAMES[idx]], "bench"))
            t += dur + float(rng.uniform(1.0, 15.0))
        duration = t + 30
        a = 0.5
        while a < duration - 10:
            length = float(rng.uniform(2, 10))
            label = f"{VERBS[int(rng.integers(len(VERBS)))]} {NAMES[int(rng.integers(len(NAMES)))]}"
            actions.append((vid, round(a, 3), round(a + length, 3), label))
            a += length + float(rng.uniform(3, 20))
        videos.append((vid, "bench", "", 24.0, 640, 480, round(duration, 3), int(duration * 24)))

    def table(rows, cols):
        return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})

    with open_store(path) as store, store.transaction():
        store.insert("videos", table(videos, ["video_id", "dataset", "path", "fps", "width", "height", "duration_s", "n_frames"]))
        store.insert("episodes", table(episodes, ["video_id", "episode_id", "t_start", "t_end"]))
        store.insert("objects", table(objects, ["video_id", "episode_id", "name", "role", "attributes", "labeller"]))
        store.insert("actions", table(actions, ["video_id", "t_start", "t_end", "label"]))


def main(argv: list[str]) -> None:
    n = int(next((a for a in argv if not a.startswith("-")), 1000))
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        build_store(store_path, n)
        t1 = time.perf_counter()
        tasks = load_task_specs()
        with open_store(store_path, read_only=True) as ro:
            if "--profile" in argv:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                results = prof.runcall(generate, ro, tasks, 0)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            else:
                results = generate(ro, tasks, seed=0)
        t2 = time.perf_counter()
        with open_store(store_path) as store:
            write_outputs(store, results, Path(tmp) / "qa", 0)
        t3 = time.perf_counter()
    n_q = sum(len(r.lines) for r in results)
    gen = t3 - t1
    print(f"store of {n} synthetic timelines built in {t1 - t0:.1f} s")
    for r in results:
        print(f"  {r.task_id:<42} {len(r.lines):>6} questions")
    print(f"all {len(tasks)} tasks: {n_q} questions in {gen:.1f} s (generate {t2 - t1:.1f} s + write {t3 - t2:.1f} s) "
          f"= {n_q / gen:.0f} questions/s; target 1,000 videos <= 30 s: "
          f"{('PASS' if gen <= 30 else 'FAIL') if n >= 1000 else f'projected {gen * 1000 / n:.0f} s'}")


if __name__ == "__main__":
    main(sys.argv[1:])
