"""``streamgaze demo``: the whole pipeline on the built-in synthetic recording, with real numbers at the end.

Every stage is the same code a user runs on real data (the CLI commands call the same functions); the
synthetic world's truth lets the demo report how well the gaze stages recovered what really happened.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rich.console import Console

from streamgaze.demo.synthetic import make_world
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.report import write_report
from streamgaze.eval.runner import run_eval
from streamgaze.eval.samples import write_samples
from streamgaze.eval.score import score_runs
from streamgaze.gaze.fixations import run_fixations
from streamgaze.gaze.ingest import ingest
from streamgaze.gaze.overlay import render_overlay
from streamgaze.objects.stage import run_objects
from streamgaze.paths import check_folder, inside, safe_name
from streamgaze.progress import stage
from streamgaze.store import open_store
from streamgaze.tasks.generate import run_generate

console = Console()
BASELINES = ("random", "first-option")


def run_demo(out_dir: Path, seed: int = 0, minutes: float = 3.0) -> dict:
    """Run every stage on a fresh synthetic world; returns the summary (`streamgaze.cli.tables.print_demo_summary`
    prints it)."""
    out_dir = Path(out_dir)
    check_folder(out_dir)  # --out a file, or under one: one line, nothing written
    store_path = out_dir / "store.duckdb"
    results_dir = out_dir / "results"
    for stale in (store_path, out_dir / "qa", results_dir):  # a demo run starts clean, never resumes
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    timings: dict[str, float] = {}

    def timed(name, fn, *args, own_bar=True, **kwargs):
        """Run one stage and time it; a stage without a progress bar of its own gets a one-step bar."""
        t0 = time.perf_counter()
        if own_bar:
            value = fn(*args, **kwargs)
        else:
            with stage(name, total=1) as advance:
                value = fn(*args, **kwargs)
                advance(1)
        timings[name] = time.perf_counter() - t0
        return value

    console.print(f"[bold]streamgaze demo[/bold]: seed {seed}, {minutes:g} min synthetic recording -> {out_dir}")
    world = timed("world", make_world, out_dir / "world", seed=seed, minutes=minutes, own_bar=False)
    timed("ingest", _ingest_world, store_path, world, own_bar=False)
    timed("fixations", run_fixations, store_path, detector="ivt", params={})
    timed("objects", run_objects, store_path, labeller="annotation", options={"truth": world.truth})
    report = timed("generate", run_generate, store_path, out_dir / "qa", seed=seed)
    overlays = timed("render", render_overlay, store_path, results_dir, video_id=world.video_id)
    runs = {}
    t0 = time.perf_counter()
    for model in BASELINES:
        run_dir = inside(results_dir, safe_name(model))  # a model name is data too: one folder inside results/
        run_eval(out_dir / "qa", EvalConfig(model, run_dir, store=store_path, seed=seed))
        write_samples(run_dir)
        runs[model] = run_dir
    timings["eval"] = time.perf_counter() - t0
    scores = score_runs(list(runs.values()))
    report_paths = write_report(scores, results_dir)
    summary = {
        "store": store_path,
        "world": world.root,
        "qa": out_dir / "qa",
        "results": results_dir,
        "overlays": overlays,
        "reports": report_paths,
        "questions": {t: r["questions"] for t, r in report["tasks"].items()},
        "scores": scores,
        "timings": timings,
        "gaze_check": _gaze_check(store_path, world.truth),
    }
    return summary


def _ingest_world(store_path: Path, world) -> None:
    ingest(store_path, "pupil-player", [world.gaze], video=world.video, video_id=world.video_id, dataset="synthetic")
    ingest(store_path, "actions-csv", [world.actions], video_id=world.video_id)


def _gaze_check(store_path: Path, truth_path: Path) -> dict:
    """How well the detected episodes match the world's true dwells (each true dwell matched once)."""
    truth = json.loads(Path(truth_path).read_text())
    dwells = [(d["t_start"], d["t_end"]) for d in truth["dwells"]]
    with open_store(store_path, read_only=True) as store:
        episodes = [tuple(r) for r in store.con.execute("SELECT t_start, t_end FROM episodes ORDER BY t_start").fetchall()]
        gazed_ok = store.con.execute("SELECT count(*) FROM objects WHERE role = 'gazed'").fetchall()[0][0]
    matched_truth = sum(any(_overlap(d, e) >= 0.5 * (d[1] - d[0]) for e in episodes) for d in dwells)
    matched_eps = sum(any(_overlap(d, e) >= 0.5 * (e[1] - e[0]) for d in dwells) for e in episodes)
    recall = matched_truth / len(dwells) if dwells else 0.0
    precision = matched_eps / len(episodes) if episodes else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_dwells": len(dwells), "episodes": len(episodes), "labelled": gazed_ok,
            "precision": precision, "recall": recall, "f1": f1}


def _overlap(a, b) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
