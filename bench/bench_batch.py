"""Batch files benchmark. Run: python bench/bench_batch.py [n_questions] [--world DIR]

Builds a 10-minute synthetic demo world (ingest, fixations, objects, generate; no render) in DIR (default: a
temporary folder; an existing DIR is reused), tiles its questions to ``n_questions`` (default 870; each copy's clip
and test points shifted by a fraction of a second so that its frames are its own), and writes the eval's Batch
request files (``eval --batch-write``, model ``openai:bench``, 16 frames) twice in the same run:
frames inline as base64 (the default) and as JPEG files referred to by ``file://`` URL (``--batch-images file``).

Reports per mode: requests, wall time and ms per request, request-file MB and KB per request, image files written;
and the ratio of the request files' sizes (inline / file) and of everything written (inline / file + images).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.demo.run import _ingest_world  # noqa: E402
from streamgaze.demo.synthetic import make_world  # noqa: E402
from streamgaze.eval.batch import evaluate_batch  # noqa: E402
from streamgaze.eval.config import EvalConfig  # noqa: E402
from streamgaze.gaze.fixations import run_fixations  # noqa: E402
from streamgaze.objects.stage import run_objects  # noqa: E402
from streamgaze.tasks.generate import run_generate  # noqa: E402


def build_world(root: Path) -> Path:
    store = root / "store.duckdb"
    if not store.exists():
        world = make_world(root / "world", seed=0, minutes=10)
        _ingest_world(store, world)
        run_fixations(store, detector="ivt", params={})
        run_objects(store, labeller="annotation", options={"truth": world.truth})
        run_generate(store, root / "qa", seed=0)
    return store


def tile(qa: Path, out: Path, n: int, duration_s: float = 600.0) -> int:
    """``n`` questions from ``qa``'s, copy k of each shifted by k * 0.37 s (within the video); the item count."""
    base = [json.loads(x) for f in sorted(qa.glob("*.jsonl")) for x in f.read_text().splitlines() if x.strip()]
    out.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list[str]] = {}
    items = 0
    for i in range(n):
        q = json.loads(json.dumps(base[i % len(base)]))
        k = i // len(base)
        shift = k * 0.37
        ends = [q["clip"][1]] + [p["t_s"] for p in q.get("test_points") or []]
        shift = min(shift, max(0.0, duration_s - 0.1 - max(ends)))
        q["id"] = f"{q['id']}~{k}"
        q["clip"] = [q["clip"][0] + shift, q["clip"][1] + shift]
        if q.get("time_s") is not None:
            q["time_s"] += shift
        for p in q.get("test_points") or []:
            p["t_s"] += shift
        items += len(q.get("test_points") or []) or 1
        by_task.setdefault(q["task"], []).append(json.dumps(q))
    for task, rows in by_task.items():
        (out / f"{task}.jsonl").write_text("\n".join(rows) + "\n")
    return items


def folder_bytes(path: Path, pattern: str = "*") -> int:
    return sum(f.stat().st_size for f in path.rglob(pattern) if f.is_file())


def main(n: int = 870, world_dir: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(world_dir) if world_dir else Path(tmp) / "world"
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        store = build_world(root)
        print(f"world: {time.perf_counter() - t0:.1f} s ({root})")
        qa = Path(tmp) / "qa"
        items = tile(root / "qa", qa, n)
        print(f"{n} questions, {items} requests (MCQ questions and proactive test points), 16 frames each")
        sizes = {}
        for mode in ("inline", "file"):
            out = Path(tmp) / f"batch-{mode}"
            config = EvalConfig("openai:bench", Path(tmp) / f"run-{mode}", store=store, frames=16)
            t0 = time.perf_counter()
            outcome = evaluate_batch(qa, config, write_dir=out, images=mode)
            dt = time.perf_counter() - t0
            manifest = json.loads((out / "manifest.json").read_text())
            req_bytes = folder_bytes(out, "requests-*.jsonl")
            img_bytes = folder_bytes(out / "images") if (out / "images").exists() else 0
            n_img = len(list((out / "images").rglob("*.jpg"))) if img_bytes else 0
            r = manifest["requests"]
            sizes[mode] = (req_bytes, img_bytes)
            print(f"{mode:>6}: {r} requests in {dt:.2f} s = {1000 * dt / r:.1f} ms/request; request files "
                  f"{req_bytes / 1e6:.1f} MB ({req_bytes / r / 1e3:.1f} KB/request) in {len(manifest['files'])} file(s)"
                  + (f"; {n_img} JPEG files, {img_bytes / 1e6:.1f} MB ({img_bytes / r / 1e3:.1f} KB/request)"
                     if img_bytes else ""))
            assert outcome.summary
        (inline, _), (file_req, file_img) = sizes["inline"], sizes["file"]
        print(f"request files, inline / file: {inline / file_req:.1f}x smaller with file images")
        print(f"everything written, inline / (file requests + images): {inline / (file_req + file_img):.2f}x")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    world = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--world=")), None)
    main(int(args[0]) if args else 870, world)
