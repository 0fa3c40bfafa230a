"""``streamgaze eval``: ask a model every question of a QA folder, resumably.

Run folder ``R``:
- ``R/run.json``: model, endpoint (never a key), gaze mode, frames policy, seed, package version, the question
  files' sha256, and the QA folder (the scorer reads the questions from there);
- ``R/predictions.jsonl``: one line per MCQ question (``point_idx`` -1) and per proactive test point, appended
  and flushed as answers arrive. A rerun reads it, drops a truncated last line, and asks only what is missing
  (rows with outcome ``error`` count as missing and are asked again; the scorer uses the last row per item).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import InputError, StreamGazeError
from ..progress import stage
from . import prompts
from .frames import VideoContext, frame_indices
from .models import ModelOptions, Request, get_model, retryable
from .parse import judge

PREDICTIONS = "predictions.jsonl"
RUN = "run.json"
REQUIRED = ("id", "task", "video_id", "question", "options", "answer", "clip")


@dataclass
class Item:
    q: dict
    point_idx: int  # -1 for MCQ
    t_s: float | None
    clip: tuple[float, float]
    expected: str

    @property
    def proactive(self) -> bool:
        return self.point_idx >= 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.q["id"], self.point_idx)


# -- questions ---------------------------------------------------------------------------------------
def question_files(qa_dir) -> list[Path]:
    qa_dir = Path(qa_dir)
    if not qa_dir.is_dir():
        raise InputError(qa_dir, "no such QA folder")
    files = sorted(qa_dir.glob("*.jsonl"))
    if not files:
        raise InputError(qa_dir, "no <task_id>.jsonl question files in the QA folder")
    return files


def load_questions(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except ValueError as exc:
                raise InputError(path, f"not valid JSON ({exc.msg})", row=row) from None
            if not isinstance(q, dict):
                raise InputError(path, "a question line must be a JSON object", row=row)
            missing = [k for k in REQUIRED if k not in q]
            if missing:
                raise InputError(path, f"question lacks {', '.join(missing)}", row=row)
            clip = q["clip"]
            if not (isinstance(clip, list) and len(clip) == 2 and all(isinstance(c, (int, float)) for c in clip)):
                raise InputError(path, "clip must be [start_s, end_s]", row=row)
            if q.get("test_points"):
                for p in q["test_points"]:
                    if not isinstance(p, dict) or "t_s" not in p or p.get("expected") not in ("yes", "no"):
                        raise InputError(path, "a test point needs t_s and expected yes/no", row=row)
            elif not q["options"] or not isinstance(q["options"], list):
                raise InputError(path, "a multiple-choice question needs options", row=row)
            out.append(q)
    return out


def items_of(q: dict) -> list[Item]:
    if q.get("test_points"):
        # proactive: the question re-sent at each point over [0, t]
        return [
            Item(q, i, float(p["t_s"]), (0.0, float(p["t_s"])), p["expected"])
            for i, p in enumerate(q["test_points"])
        ]
    return [Item(q, -1, None, (float(q["clip"][0]), float(q["clip"][1])), q["answer"])]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- predictions file --------------------------------------------------------------------------------
def read_predictions(path: Path, *, repair: bool = False) -> list[dict]:
    """Every complete line; a truncated last line (no newline, or not JSON) is ignored (and cut off if ``repair``)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    rows = []
    for line in data[:end].split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "question_id" in row:
            rows.append(row)
    return rows


# -- prompts and frames ------------------------------------------------------------------------------
def _family(q: dict) -> str:
    return q.get("family") or q["task"].split("_", 1)[0]


def salience_window(item: Item) -> float:
    fam = _family(item.q)
    if item.proactive:
        return prompts.window_of(item.q)
    if fam == "present":
        return 10.0
    return item.clip[1] - item.clip[0]


def build_request(item: Item, model, mode: str, n_frames: int, video: VideoContext | None) -> Request:
    q = item.q
    req = Request(q["id"], item.point_idx, "", options=list(q.get("options") or []), proactive=item.proactive, task=q["task"])
    if not getattr(model, "uses_prompt", True) and not getattr(model, "uses_frames", True):
        return req
    s_window = salience_window(item)
    t0, t1 = item.clip
    lines = None
    if mode == "scanpath-text" and video is not None:
        units = "episodes" if _family(q) == "past" and not item.proactive else "fixations"
        lines = [prompts.scanpath_line(*u) for u in video.scanpath(units, t0, t1)]
    gaze = prompts.gaze_block(mode, S=s_window, scanpath_lines=lines)
    if item.proactive:
        target = (q.get("evidence") or {}).get("target") or ""
        req.prompt = prompts.proactive_prompt(q["task"], q["question"], target, prompts.window_of(q), gaze)
    else:
        req.prompt = prompts.mcq_prompt(q["question"], req.options, gaze)
    if getattr(model, "uses_frames", True) and video is not None:
        idx = frame_indices(item.clip, video.fps, video.n_frames, n_frames)
        req.images = video.jpegs(idx, overlay=(mode == "overlay"))
        req.frame_times = [round(i / video.fps, 4) for i in idx]
        if mode == "salience":
            req.images.append(video.salience_jpeg(idx[-1], max(t0, t1 - s_window), t1))
    return req


# -- the run -----------------------------------------------------------------------------------------
def run_eval(
    qa_dir,
    model: str,
    out_dir,
    *,
    base_url: str | None = None,
    concurrency: int = 8,
    gaze_prompt: str = "none",
    store=None,
    seed: int = 0,
    frames: int = 16,
    retries: int = 4,
    backoff_s: float = 1.0,
    fov_radius: float | None = None,
    max_tokens: int = 16,
    timeout_s: float = 60.0,
) -> str:
    """Ask ``model`` every question of ``qa_dir``; write ``out_dir``; return a one-line summary."""
    if gaze_prompt not in prompts.GAZE_MODES:
        raise StreamGazeError(f"unknown gaze prompt {gaze_prompt!r}; choose one of {', '.join(prompts.GAZE_MODES)}")
    qa_dir, out_dir = Path(qa_dir), Path(out_dir)
    files = question_files(qa_dir)
    questions = [q for f in files for q in load_questions(f)]
    items = [it for q in questions for it in items_of(q)]

    options = ModelOptions(base_url=base_url, seed=seed, max_tokens=max_tokens, timeout_s=timeout_s)
    m = get_model(model, options)
    endpoint = getattr(m, "endpoint", None)

    out_dir.mkdir(parents=True, exist_ok=True)
    run_path = out_dir / RUN
    run_info = {
        "model": model,
        "endpoint": endpoint,
        "gaze_prompt": gaze_prompt,
        "prompt_style": "windowed",
        "frames": {"n": frames, "policy": "evenly over the clip, last within one frame period of its end",
                   "max_side_px": 512, "format": "jpeg"} if getattr(m, "uses_frames", True) else {"n": 0, "policy": "none (model takes no frames)"},
        "fov_radius": fov_radius or prompts_fov(),
        "seed": seed,
        "streamgaze_version": __version__,
        "qa_dir": str(qa_dir.resolve()),
        "qa_dir_relative": os.path.relpath(qa_dir.resolve(), out_dir.resolve()),
        "question_files": {f.name: sha256_file(f) for f in files},
    }
    if run_path.exists():
        try:
            old = json.loads(run_path.read_text())
        except ValueError:
            old = {}
        for k in ("model", "gaze_prompt"):
            if old.get(k) not in (None, run_info[k]):
                raise InputError(run_path, f"this run folder holds {k} {old[k]!r}, not {run_info[k]!r}; use another --out")
        run_info["started"] = old.get("started")
    run_info.setdefault("started", None)
    run_info["started"] = run_info["started"] or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_path.write_text(json.dumps(run_info, indent=2) + "\n")

    pred_path = out_dir / PREDICTIONS
    done = {(r["question_id"], int(r.get("point_idx", -1))) for r in read_predictions(pred_path, repair=True)
            if r.get("outcome") != "error"}
    todo = [it for it in items if it.key not in done]

    videos: dict[str, VideoContext] = {}
    needs_store = bool(todo) and (getattr(m, "uses_frames", True) or (getattr(m, "uses_prompt", True) and gaze_prompt == "scanpath-text"))
    if needs_store:
        store_path = Path(store) if store else qa_dir.parent / "store.duckdb"
        if not store_path.exists():
            raise InputError(store_path, "no store with the videos and gaze (pass --store)")
        from ..store import open_store

        with open_store(store_path, read_only=True) as st:
            for vid in sorted({it.q["video_id"] for it in todo}):
                videos[vid] = VideoContext.load(st, vid, fov_radius or prompts_fov())

    counts: dict[str, int] = {}
    t_start = time.perf_counter()
    try:
        asyncio.run(_run(m, todo, videos, pred_path, model, gaze_prompt, frames, concurrency, retries, backoff_s, timeout_s, counts))
    finally:
        for v in videos.values():
            v.close()
    elapsed = time.perf_counter() - t_start
    run_info["last_run"] = {"asked": len(todo), "already": len(items) - len(todo), "outcomes": counts,
                            "seconds": round(elapsed, 3)}
    run_path.write_text(json.dumps(run_info, indent=2) + "\n")
    outcome_text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing new"
    return f"{out_dir}: asked {len(todo)} ({outcome_text}), {len(items) - len(todo)} already answered; {pred_path}"


def prompts_fov() -> float:
    from ..render import FOV_RADIUS

    return FOV_RADIUS


async def _run(m, todo, videos, pred_path, model_name, mode, n_frames, concurrency, retries, backoff_s, timeout_s, counts):
    queue: asyncio.Queue = asyncio.Queue()
    for it in todo:
        queue.put_nowait(it)
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, len(videos) * 2 or 1)))
    fh = open(pred_path, "a", encoding="utf-8")

    async def worker(advance) -> None:
        while True:
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            video = videos.get(it.q["video_id"])
            if getattr(m, "uses_frames", True) or getattr(m, "uses_prompt", True):
                req = await loop.run_in_executor(pool, build_request, it, m, mode, n_frames, video)
            else:
                req = build_request(it, m, mode, n_frames, video)
            text, error, latency = await _ask(m, req, retries, backoff_s, timeout_s)
            if error is not None:
                parsed, outcome, kind = None, "error", "error"
            else:
                parsed, outcome, kind = judge(text, options=req.options, answer=it.expected, proactive=it.proactive)
            row = {
                "question_id": it.q["id"],
                "task": it.q["task"],
                "point_idx": it.point_idx,
                **({"t_s": it.t_s} if it.proactive else {}),
                "model": model_name,
                "gaze_prompt": mode,
                "response": text,
                "parsed": parsed,
                "parse": kind,
                "outcome": outcome,
                "latency_s": round(latency, 4),
                "frames": req.frame_times,
                **({"error": error} if error else {}),
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            counts[outcome] = counts.get(outcome, 0) + 1
            advance(1)

    try:
        with stage("eval", total=len(todo)) as advance:
            await asyncio.gather(*(worker(advance) for _ in range(max(1, min(concurrency, len(todo) or 1)))))
    finally:
        fh.close()
        pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(m, "aclose", None)
        if close is not None:
            await close()


async def _ask(m, req: Request, retries: int, backoff_s: float, timeout_s: float) -> tuple[str | None, str | None, float]:
    """The reply, retried with exponential backoff on 429/5xx/timeouts; ``(text, error, latency_s)``."""
    attempt = 0
    while True:
        t0 = time.perf_counter()
        try:
            text = await asyncio.wait_for(m.ask(req), timeout=timeout_s * 1.5 + 1)
            return ("" if text is None else str(text)), None, time.perf_counter() - t0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any adapter failure becomes an error outcome
            latency = time.perf_counter() - t0
            attempt += 1
            if attempt < retries and retryable(exc):
                await asyncio.sleep(backoff_s * (2 ** (attempt - 1)))
                continue
            msg = f"{type(exc).__name__}: {exc}"
            key = os.environ.get("OPENAI_API_KEY")
            if key:
                msg = msg.replace(key, "***")
            return None, msg.splitlines()[0][:300] if msg else type(exc).__name__, latency
