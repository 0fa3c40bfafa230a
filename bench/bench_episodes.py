"""Episode-level accuracy (a script, not a test): dwell episodes built from each detector's fixations against
the synthetic worlds' true dwells.

    python bench/bench_episodes.py [--seeds 0 1 2 3] [--minutes 3] [--detectors ivt ivt_flow idt]
        [--merge-px 50 70 90]

Matching: a true dwell is found when exactly one episode covers >= 50 % of it and that episode covers no
other dwell (one-to-one); precision = found / episodes, recall = found / dwells, F1 their harmonic mean
(the same rule as tests/test_fixations.py). Pipeline per world: ingest (pupil-player + video), fixations
with the detector's defaults, the episode builder's defaults (``--merge-px`` sweeps its merge distance).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze import open_store  # noqa: E402
from streamgaze.gaze.fixations import EPISODE_DEFAULTS, run_fixations  # noqa: E402
from streamgaze.gaze.ingest import ingest  # noqa: E402
from streamgaze.demo.synthetic import make_world  # noqa: E402


def match(dwells, eps):
    def ov(a, b):
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))

    M = np.array([[ov(d, e) >= 0.5 * (d[1] - d[0]) for e in eps] for d in dwells], bool).reshape(len(dwells), len(eps))
    good = [(M[i].sum() == 1) and (M[:, M[i].argmax()].sum() == 1) for i in range(len(dwells))]
    tp = int(sum(good))
    p = tp / len(eps) if eps else 1.0
    r = tp / len(dwells) if dwells else 1.0
    return tp, p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--detectors", nargs="+", default=["ivt", "ivt_flow", "idt"])
    ap.add_argument("--merge-px", type=float, nargs="+", default=[EPISODE_DEFAULTS["merge_px"]])
    args = ap.parse_args()
    rows = []
    runs = [(d, m) for d in args.detectors for m in args.merge_px]
    tot = {r: [0, 0, 0] for r in runs}  # tp, episodes, dwells
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            w = make_world(Path(tmp) / f"w{seed}", seed=seed, minutes=args.minutes)
            truth = json.loads(Path(w.truth).read_text())
            dwells = [(d["t_start"], d["t_end"]) for d in truth["dwells"]]
            store = Path(tmp) / f"s{seed}.duckdb"
            ingest(store, "pupil-player", [w.root], video=w.video, video_id="syn")
            for det, merge_px in runs:
                t0 = time.perf_counter()
                run_fixations(store, detector=det, params={"merge_px": merge_px})
                dt = time.perf_counter() - t0
                with open_store(store, read_only=True) as s:
                    eps = [(r["t_start"], r["t_end"]) for r in s.rows("SELECT t_start, t_end FROM episodes ORDER BY t_start")]
                tp, p, r, f1 = match(dwells, eps)
                tot[det, merge_px][0] += tp
                tot[det, merge_px][1] += len(eps)
                tot[det, merge_px][2] += len(dwells)
                rows.append((seed, det, merge_px, len(dwells), len(eps), p, r, f1, dt))
    print(f"synthetic worlds, seeds {args.seeds}, {args.minutes:g} min each\n")
    print("| seed | detector | merge_px | dwells | episodes | precision | recall | F1 | time (s) |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for seed, det, merge_px, nd, ne, p, r, f1, dt in rows:
        print(f"| {seed} | {det} | {merge_px:g} | {nd} | {ne} | {p:.3f} | {r:.3f} | {f1:.3f} | {dt:.1f} |")
    print("\n| detector | merge_px | pooled precision | pooled recall | pooled F1 |\n|---|---|---|---|---|")
    for (det, merge_px), (tp, ne, nd) in tot.items():
        p, r = tp / max(ne, 1), tp / max(nd, 1)
        print(f"| {det} | {merge_px:g} | {p:.3f} | {r:.3f} | {2 * p * r / (p + r) if p + r else 0:.3f} |")


if __name__ == "__main__":
    main()
