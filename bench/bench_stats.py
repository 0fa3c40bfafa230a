"""Cost of the clustered intervals (a script, not a test).

    python bench/bench_stats.py [n_videos] [questions_per_video]

(a) One task's interval: the clustered two-stage bootstrap (`streamgaze.eval.stats.clustered_ci`, 1000 resamples)
    against its peer, the per-question bootstrap that `score` used before (`question_bootstrap_ci`), on the same
    0/1 outcomes; and the clustered bootstrap on weighted units (proactive questions of 1-8 test points, the
    index-drawing path).
Times are CPU seconds of this process, best of 3.
(b) A whole run: `score_run` on a synthetic run folder of the ten StreamGaze tasks (every task's interval, the
    joint draw for families and overall, and the three blind baselines per task) against reading and parsing the
    same run (`load_run`), the floor any scoring pays.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from streamgaze.eval.runner import sha256_file
from streamgaze.eval.score import load_run, score_run
from streamgaze.eval.stats import clustered_ci, question_bootstrap_ci
from streamgaze.tasks.suites import DEFAULT_SUITE, registered_suites


def best_of(fn, repeat: int = 3) -> float:
    """The best of ``repeat`` runs in CPU seconds of this process (steadier than wall time on a shared box)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def make_run(root: Path, n_videos: int, per_video: int, rng) -> Path:
    qa = root / "qa"
    qa.mkdir()
    files = {}
    rows = []
    for task in registered_suites()[DEFAULT_SUITE].tasks:
        proactive = task.startswith("proactive")
        lines = []
        for v in range(n_videos):
            p_video = rng.beta(1.5, 1.0)
            for k in range(per_video):
                q = {"id": f"{task}/v{v}/{k}", "task": task, "family": task.split("_")[0], "video_id": f"v{v}",
                     "question": "Which object?", "options": ["mug", "plate", "sink", "kettle"], "answer": "ABCD"[k % 4],
                     "answer_text": "mug", "time_s": 10.0, "clip": [0.0, 10.0]}
                if proactive:
                    n_pts = int(rng.integers(1, 9))
                    q.update(options=[], answer="", answer_text="", evidence={"onset_s": 20.0},
                             test_points=[{"t_s": 10.0 * (i + 1), "expected": "yes" if i % 2 else "no"} for i in range(n_pts)])
                lines.append(json.dumps(q))
                for i in (range(len(q["test_points"])) if proactive else [-1]):
                    ok = bool(rng.random() < p_video)
                    rows.append(json.dumps({"question_id": q["id"], "task": task, "point_idx": i,
                                            "outcome": "correct" if ok else "wrong"}))
        path = qa / f"{task}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files[path.name] = sha256_file(path)
    run = root / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": "bench", "gaze_prompt": "none", "qa_dir": str(qa),
                                              "question_files": files}))
    (run / "predictions.jsonl").write_text("\n".join(rows) + "\n")
    return run


def main() -> None:
    n_videos = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    per_video = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rng = np.random.default_rng(0)
    n = n_videos * per_video
    videos = np.repeat(np.arange(n_videos), per_video)
    x = (rng.random(n) < np.repeat(rng.beta(1.5, 1.0, n_videos), per_video)).astype(float)
    t_naive = best_of(lambda: question_bootstrap_ci(x))
    t_clustered = best_of(lambda: clustered_ci(x, videos))
    w = rng.integers(1, 9, n).astype(float)
    xw = np.floor(w * rng.random(n))
    t_weighted = best_of(lambda: clustered_ci(xw, videos, w=w))
    print(f"(a) one task, {n} questions on {n_videos} videos, 1000 resamples")
    print(f"    per-question bootstrap      {1e3 * t_naive:8.2f} ms  {question_bootstrap_ci(x)}")
    print(f"    clustered, 0/1 outcomes     {1e3 * t_clustered:8.2f} ms  {clustered_ci(x, videos)}"
          f"  ratio {t_clustered / t_naive:.1f}x")
    print(f"    clustered, weighted units   {1e3 * t_weighted:8.2f} ms  (proactive questions of 1-8 points)")
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), n_videos, per_video, rng)
        t_load = best_of(lambda: load_run(run))
        t_score = best_of(lambda: score_run(run))
        s = score_run(run)
        print(f"(b) score_run, 10 tasks x {n} questions: {t_score:.2f} s; reading the run alone {t_load:.2f} s; "
              f"ratio {t_score / t_load:.1f}x")
        print(f"    overall {s['overall']} {s['overall_ci95']}")


if __name__ == "__main__":
    main()
