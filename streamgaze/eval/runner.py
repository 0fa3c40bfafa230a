"""``streamgaze eval``: ask a model every question of a QA folder, resumably.

Run folder ``R``:
- ``R/run.json``: model, endpoint (never a key), gaze mode, frames policy, seed, package version, the question
  files' sha256, and the QA folder (the scorer reads the questions from there);
- ``R/predictions.jsonl``: one line per MCQ question (``point_idx`` -1) and per proactive test point, appended
  and flushed as answers arrive. A rerun reads it, drops a truncated last line, and asks only what is missing
  (rows with outcome ``error`` count as missing and are asked again; the scorer uses the last row per item);
- ``R/stream.jsonl`` (``--streaming``, tasks.md 3.5): one line per poll of the streaming alert metric; a question
  is polled at time_s + P, + 2P, ... until the first "yes" or the horizon; a rerun continues where it stopped.

With a store given (``store=``/``--store``), the rows are also written into the store's ``predictions`` table
(one row per item; the run's rows replaced in one transaction at the end of each run, so a killed run is
mirrored by the next one). Released StreamGaze ``*.json`` files are read as questions too (`release`).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from streamgaze import __version__
from streamgaze.errors import ExternalCallsFailed, InputError
from streamgaze.eval import dispatch, prompts, reference_protocol
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.frames import VideoContext, frame_indices
from streamgaze.eval.models import ModelOptions, Request, get_model
from streamgaze.eval.parse import is_refusal, judge, parse_yes_no
from streamgaze.eval.release import find_video, gaze_viz_path, load_release_file, video_basename
from streamgaze.gaze.geometry import OVERLAY_FOV_RADIUS
from streamgaze.gaze.video import probe_video
from streamgaze.llm.client import redact_url, url_secrets
from streamgaze.paths import check_outputs
from streamgaze.progress import stage
from streamgaze.store import open_store
from streamgaze.tasks.spec import family_of

PREDICTIONS = "predictions.jsonl"
RUN = "run.json"
#: run.json fields that decide what a model was shown and how it was asked: runs to be merged must agree on them,
#: and the per-sample log's settings hash covers them (with the question files)
RUN_SETTINGS = ("model", "gaze_prompt", "prompt_style", "flagged", "protocol", "decoding", "frames", "fov_radius",
                "seed", "streaming", "streamgaze_version")
RAW_GAZE_MODES = ("salience", "scanpath-text")  # need the gaze samples; a released gaze_viz video is not enough
MISSING_LISTED = 3  # videos named in the one line about missing videos
REQUIRED = ("id", "task", "video_id", "question", "options", "answer", "clip")


@dataclass
class Item:
    q: dict
    point_idx: int  # -1 for MCQ
    t_s: float | None
    clip: tuple[float, float]
    expected: str
    window: float | None = None  # W of the proactive prompt (None: the question's own)
    k_last: int | None = None  # streaming: the last poll index before the horizon

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
    stems = {f.stem for f in files}
    # released StreamGaze files (tasks.md 4.2); a .jsonl of the same task wins
    # (generation_report.json, written by `generate` beside the questions, is not a question file)
    files += sorted(
        f for f in qa_dir.glob("*.json") if f.stem not in stems and f.name != "generation_report.json" and f.is_file()
    )
    if not files:
        raise InputError(qa_dir, "no <task_id>.jsonl (or released <task_id>.json) question files in the QA folder")
    return sorted(files)


def _question_lines(path: Path):
    if path.suffix == ".json":
        for row, q in enumerate(load_release_file(path), start=1):
            yield row, q
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the question file ({exc.strerror or exc})") from None
    for row, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                   "save the file as UTF-8", row=row) from None
        if row == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except ValueError as exc:
            raise InputError(path, f"not valid JSON ({exc.msg})", row=row) from None
        yield row, q


def _finite(value, low: float | None = 0.0) -> bool:
    """A real number (not a bool), finite, and at least ``low``."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (low is None or value >= low))


def _show(value, limit: int = 60) -> str:
    """``repr(value)`` cut at ``limit`` characters, for an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_question(q, path, row) -> None:
    """One question line as the runner needs it, else an `InputError` naming the file, the row and the field."""
    if not isinstance(q, dict):
        raise InputError(path, f"a question line must be a JSON object, not {type(q).__name__}", row=row)
    missing = [k for k in REQUIRED if k not in q]
    if missing:
        raise InputError(path, f"question lacks {', '.join(missing)}", row=row)
    for k in ("id", "task", "video_id", "question"):
        if not isinstance(q[k], str) or not q[k].strip():
            raise InputError(path, f"{k} must be a non-empty string, got {_show(q[k])}", row=row)
    clip = q["clip"]
    if not (isinstance(clip, list) and len(clip) == 2 and all(_finite(c) for c in clip) and clip[0] <= clip[1]):
        raise InputError(path, f"clip must be [start_s, end_s], finite seconds >= 0 with start <= end, got {_show(clip)}", row=row)
    if "time_s" in q and q["time_s"] is not None and not _finite(q["time_s"]):
        raise InputError(path, f"time_s must be a finite number of seconds >= 0, got {_show(q['time_s'])}", row=row)
    points = q.get("test_points")
    if points:
        if not isinstance(points, list):
            raise InputError(path, "test_points must be a list", row=row)
        for i, p in enumerate(points):
            if not isinstance(p, dict) or "t_s" not in p or p.get("expected") not in ("yes", "no"):
                raise InputError(path, f"test point {i}: a test point needs t_s and expected yes/no", row=row)
            if not _finite(p["t_s"]):
                raise InputError(path, f"test point {i}: t_s must be a finite number of seconds >= 0, got {_show(p['t_s'])}", row=row)
    else:
        options = q["options"]
        if not options or not isinstance(options, list):
            raise InputError(path, "a multiple-choice question needs options", row=row)
        if not all(isinstance(o, str) for o in options):
            raise InputError(path, "options must be strings", row=row)
        if not isinstance(q["answer"], str):
            raise InputError(path, f"answer must be a string, got {_show(q['answer'])}", row=row)


def load_questions(path: Path) -> list[dict]:
    out = []
    for row, q in _question_lines(Path(path)):
        check_question(q, path, row)
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
    return q.get("family") or family_of(q["task"])


def salience_window(item: Item) -> float:
    fam = _family(item.q)
    if item.proactive:
        return item.window or prompts.window_of(item.q)
    if fam == "present":
        return 10.0
    return item.clip[1] - item.clip[0]


def build_request(item: Item, model, mode: str, n_frames: int, video: VideoContext | None,
                  prompt_style: str = "windowed", protocol: str = "ours", decode: bool = True) -> Request:
    """The request about ``item``; ``decode=False`` leaves out the images (what a Batch result's row records)."""
    q = item.q
    if protocol == "reference":
        item = reference_protocol.with_reference_clip(item)
    req = Request(q["id"], item.point_idx, "", options=list(q.get("options") or []), proactive=item.proactive,
                  task=q["task"], clip=item.clip)
    if not getattr(model, "uses_prompt", True) and not getattr(model, "uses_frames", True):
        return req
    s_window = salience_window(item)
    t0, t1 = item.clip
    lines = shown_units = None
    if mode == "scanpath-text" and video is not None:
        kind = "episodes" if _family(q) == "past" and not item.proactive else "fixations"
        shown_units = video.scanpath(kind, t0, t1)
        lines = [prompts.scanpath_line(*u) for u in shown_units]
    gaze = prompts.gaze_block(mode, S=s_window, scanpath_lines=lines)
    if item.proactive and prompt_style == "reference":
        req.prompt = prompts.reference_proactive_prompt(q["question"], gaze)
    elif item.proactive:
        target = (q.get("evidence") or {}).get("target") or ""
        req.prompt = prompts.proactive_prompt(q["task"], q["question"], target, item.window or prompts.window_of(q), gaze)
    elif prompt_style == "reference":
        req.prompt = prompts.reference_mcq_prompt(q["question"], req.options, gaze)
    else:
        req.prompt = prompts.mcq_prompt(q["question"], req.options, gaze)
    if getattr(model, "uses_frames", True) and video is not None:
        if protocol == "reference":
            idx = reference_protocol.clip_indices(item.clip, video.fps, video.n_frames, n_frames)
            if decode:
                req.images = reference_protocol.jpegs(video, idx, overlay=(mode == "overlay"))
        else:
            idx = frame_indices(item.clip, video.fps, video.n_frames, n_frames)
            if decode:
                req.images = video.jpegs(idx, overlay=(mode == "overlay"))
        req.frame_times = [round(i / video.fps, 4) for i in idx]
        if mode == "salience" and idx and decode:
            req.images.append(video.salience_jpeg(idx[-1], max(t0, t1 - s_window), t1))
        req.gaze_until = video.gaze_until(mode, idx, (max(t0, t1 - s_window), t1), shown_units)
    elif shown_units:  # a model without frames still reads the scanpath text
        req.gaze_until = video.gaze_until(mode, [], (t0, t1), shown_units)
    return req


def answer_row(it: Item, req: Request, text: str | None, error: str | None, latency: float, model_name: str,
               mode: str, streaming: bool = False) -> dict:
    """The predictions row of one reply (or failure) to ``req``: parsed and judged the same way for an online
    answer and a Batch result."""
    if error is not None:
        parsed, outcome, kind = None, "error", "error"
    elif streaming:
        parsed, kind = parse_yes_no(text)
        outcome = parsed if parsed is not None else ("refused" if is_refusal(text) else "unparsed")
    else:
        parsed, outcome, kind = judge(text, options=req.options, answer=it.expected, proactive=it.proactive)
    return {
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
        "clip": list(req.clip) if req.clip is not None else None,
        "frames": req.frame_times,
        "gaze_until": None if req.gaze_until is None else round(req.gaze_until, 6),
        **({"k_last": it.k_last} if it.k_last is not None else {}),
        **({"error": error} if error else {}),
    }


# -- streaming alert metric (tasks.md 3.5) -------------------------------------------------------------
STREAM = "stream.jsonl"
STREAM_HORIZON_S = 300.0


@dataclass
class StreamJob:
    """The remaining polls of one proactive question: t_k = time_s + k * P for k = first_k .. last_k."""

    q: dict
    first_k: int
    last_k: int
    poll_s: float

    def item(self, k: int) -> Item:
        t = round(float(self.q["time_s"]) + k * self.poll_s, 3)
        return Item(self.q, k, t, (0.0, t), "", window=self.poll_s, k_last=self.last_k)


def stream_polls(q: dict, poll_s: float, duration_s: float | None, horizon_s: float = STREAM_HORIZON_S) -> int:
    """K: the polls t_k = time_s + k P (k = 1..K) up to min(time_s + horizon, duration)."""
    t0 = float(q["time_s"])
    end = t0 + horizon_s
    if duration_s:
        end = min(end, float(duration_s))
    else:  # no store: as far as the question's own test points reach
        pts = [float(p["t_s"]) for p in q.get("test_points") or []]
        end = min(end, max(pts)) if pts else end
    return max(0, int((end - t0) / poll_s + 1e-6))


def stream_state(rows: list[dict]) -> dict[str, dict]:
    """Per question: {"alert_k": first k answered yes or None, "next_k": first poll still to ask}."""
    by_q: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_q.setdefault(r["question_id"], {})[int(r["point_idx"])] = r
    out = {}
    for qid, polls in by_q.items():
        alert = None
        k = 1
        while k in polls and polls[k].get("outcome") != "error":
            if polls[k].get("parsed") == "yes":
                alert = k
                break
            k += 1
        out[qid] = {"alert_k": alert, "next_k": k}
    return out


# -- the run -----------------------------------------------------------------------------------------
@dataclass
class EvalOutcome:
    """What one run did: the one-line ``summary``, the requests it sent (``asked``), how many of them ended in
    error (``failed``) and the last error line (redacted)."""

    summary: str
    asked: int = 0
    failed: int = 0
    last_error: str | None = None

    def failure(self) -> ExternalCallsFailed | None:
        """The `ExternalCallsFailed` (exit code 1) to raise when requests failed, else None."""
        if not self.failed:
            return None
        last = f" (last: {self.last_error})" if self.last_error else ""
        return ExternalCallsFailed(f"{self.failed} of {self.asked} requests failed{last}; "
                                   "rerun the same command to retry them")


def run_eval(qa_dir, config: EvalConfig) -> str:
    """Ask ``config.model`` every question of ``qa_dir``; write ``config.out_dir``; return a one-line summary.

    ``config.streaming``: instead of the test points, run the streaming alert metric over the proactive questions
    (poll every ``poll_s`` with W = ``poll_s``; ``tolerance_s`` is T, recorded for the scorer). Failed requests
    are rows with outcome ``error`` (asked again by a rerun); `evaluate` also reports how many there were."""
    return evaluate(qa_dir, config).summary


def evaluate(qa_dir, config: EvalConfig, batch=None) -> EvalOutcome:
    """`run_eval`, returning an `EvalOutcome`: every question file is read and checked before anything is written
    or sent (a bad file is an `InputError`); ``streamgaze eval`` exits 1 when ``failed`` is not 0.

    ``batch`` (a `streamgaze.eval.batch.EvalBatch`): write the requests to Batch files, or read Batch results,
    instead of asking the model; it checks its input before the run folder is touched."""
    if not isinstance(config, EvalConfig):
        raise TypeError(f"run_eval(qa_dir, config): config must be an EvalConfig, not {type(config).__name__}")
    c = config
    model, out_dir, base_url, concurrency, gaze_prompt = c.model, c.out_dir, c.base_url, c.concurrency, c.gaze_prompt
    store, seed, frames, retries, backoff_s, fov_radius = c.store, c.seed, c.frames, c.retries, c.backoff_s, c.fov_radius
    max_tokens, timeout_s, prompt_style, streaming = c.max_tokens, c.timeout_s, c.prompt_style, c.streaming
    protocol = c.protocol
    poll_s, tolerance_s = c.poll_s, c.tolerance_s
    qa_dir, out_dir = Path(qa_dir), Path(out_dir)
    check_outputs(out_dir, [RUN, STREAM if streaming else PREDICTIONS])  # --out a file, or its files folders: nothing written
    files = question_files(qa_dir)
    questions = []
    for f in files:
        for q in load_questions(f):
            if streaming and q.get("test_points") and q.get("time_s") is None:
                raise InputError(f, f"question {q['id']!r}: --streaming polls from time_s, which it lacks")
            questions.append(q)
    if c.shard is not None:  # the questions of the shard's videos only (`streamgaze.shards`)
        questions = [q for q in questions if c.shard.holds(q["video_id"])]
    items = [it for q in questions for it in items_of(q)]

    options = ModelOptions(base_url=base_url, seed=seed, max_tokens=max_tokens, timeout_s=timeout_s,
                           temperature=c.temperature, top_p=c.top_p, offline=batch is not None,
                           base_urls=c.base_urls, concurrency=concurrency, retry_budget_s=c.retry_budget_s,
                           backoff_s=backoff_s, retries=retries)
    m = get_model(model, options)
    if hasattr(m, "prepare"):  # a model that answers from the whole question set (the blind `prior`)
        m.prepare(questions)
    endpoint = redact_url(getattr(m, "endpoint", None))  # a key written into the URL is never recorded

    # a missing store is bad input too: said before the run folder is touched
    needs_video = getattr(m, "uses_frames", True) or (getattr(m, "uses_prompt", True) and gaze_prompt == "scanpath-text")
    store_path = Path(store) if store else qa_dir.parent / "store.duckdb"
    release = c.videos is not None
    if release and not Path(c.videos).is_dir():
        raise InputError(c.videos, "no such videos folder (expected original_video/ and gaze_viz_video/ in it)")
    if release and store is not None and not store_path.exists():
        raise InputError(store_path, "no such store")
    if needs_video and not release and not store_path.exists():
        if streaming:
            missing = any(q.get("test_points") for q in questions)
        else:
            answered = {(r["question_id"], int(r.get("point_idx", -1))) for r in read_predictions(out_dir / PREDICTIONS)
                        if r.get("outcome") != "error"}
            missing = any(it.key not in answered for it in items)
        if missing:
            raise InputError(store_path, "no store with the videos and gaze (pass --store)")

    # a released folder: every video found, probed and checked before the run folder is touched
    release_videos: dict[str, VideoContext] = {}
    missing_videos: dict[str, str] = {}  # question id -> the video file name not found
    if release and needs_video:
        if streaming:
            pending = [q for q in questions if q.get("test_points")]
        else:
            answered = {(r["question_id"], int(r.get("point_idx", -1))) for r in read_predictions(out_dir / PREDICTIONS)
                        if r.get("outcome") not in ("error", "missing")}
            pending_ids = {it.q["id"] for it in items if it.key not in answered}
            pending = [q for q in questions if q["id"] in pending_ids]
        release_videos, missing_videos = _release_videos(pending, Path(c.videos), gaze_prompt,
                                                         store_path if store is not None else None,
                                                         fov_radius or OVERLAY_FOV_RADIUS, c.allow_missing)

    persist = getattr(batch, "writes_run", True)  # Batch files written: the run folder is left as it is
    run_path = out_dir / RUN
    run_info = {
        "model": model,
        "endpoint": endpoint,
        "gaze_prompt": gaze_prompt,
        "prompt_style": prompt_style,
        "flagged": prompts.REFERENCE_FLAG if prompt_style == "reference" else None,
        "frames": ({"n": frames, "policy": "evenly over the clip, last within one frame period of its end",
                    "max_side_px": 512, "format": "jpeg"} if protocol == "ours" else reference_protocol.frames_info(frames))
        if getattr(m, "uses_frames", True) else {"n": 0, "policy": "none (model takes no frames)"},
        "protocol": protocol,
        "decoding": {"temperature": c.temperature, "top_p": c.top_p, "max_tokens": max_tokens},
        "fov_radius": fov_radius or OVERLAY_FOV_RADIUS,
        "seed": seed,
        "streamgaze_version": __version__,
        "qa_dir": str(qa_dir.resolve()),
        "qa_dir_relative": os.path.relpath(qa_dir.resolve(), out_dir.resolve()),
        "question_files": {f.name: sha256_file(f) for f in files},
        "questions_commit": _git_commit(qa_dir),
        **({"videos_dir": str(Path(c.videos).resolve())} if release else {}),
        **({"shard": str(c.shard)} if c.shard is not None else {}),
    }
    if batch is not None:  # checks its results against these settings before the run folder is touched
        batch.prepare(c, items, m, run_info)
    old: dict = {}
    if run_path.exists():
        try:
            old = json.loads(run_path.read_text())
        except ValueError:
            old = {}
        for k in ("model", "gaze_prompt", "prompt_style", "protocol"):
            if old.get(k) not in (None, run_info[k]):
                raise InputError(run_path, f"this run folder holds {k} {old[k]!r}, not {run_info[k]!r}; use another --out")
        if old and old.get("shard") != run_info.get("shard"):
            raise InputError(run_path, f"this run folder holds shard {old.get('shard') or 'none (every video)'}, not "
                                       f"{run_info.get('shard') or 'none (every video)'}; use another --out")
        for k in ("started", "streaming", "last_run", "last_stream_run"):
            if old.get(k) is not None:
                run_info[k] = old[k]
    run_info["started"] = run_info.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if streaming:
        prev = run_info.get("streaming")
        if prev and (prev.get("poll_s") != poll_s or prev.get("tolerance_s") != tolerance_s):
            raise InputError(run_path, f"this run folder streamed with P={prev.get('poll_s')} s, T={prev.get('tolerance_s')} s; use another --out")
        run_info["streaming"] = {"poll_s": poll_s, "tolerance_s": tolerance_s, "horizon_s": STREAM_HORIZON_S,
                                 "window_s": poll_s}
    if persist:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_path, run_info)

    # what is left to ask
    if streaming:
        pred_path = out_dir / STREAM
        state = stream_state(read_predictions(pred_path, repair=True))
        proactive_qs = [q for q in questions if q.get("test_points")]
    else:
        pred_path = out_dir / PREDICTIONS
        done = {(r["question_id"], int(r.get("point_idx", -1))) for r in read_predictions(pred_path, repair=True)
                if r.get("outcome") not in ("error", "missing")}
        todo = [it for it in items if it.key not in done]

    videos: dict[str, VideoContext] = {}
    durations: dict[str, float] = {}
    wanted = {q["video_id"] for q in proactive_qs} if streaming else {it.q["video_id"] for it in todo}
    if release:
        videos = release_videos
        durations = {q["video_id"]: v.n_frames / v.fps for q in questions if (v := videos.get(q["id"])) is not None}
    elif wanted and (needs_video or (streaming and store_path.exists())):
        if not store_path.exists():
            raise InputError(store_path, "no store with the videos and gaze (pass --store, or --videos / --benchmark "
                                         "for a released StreamGaze folder)")
        with open_store(store_path, read_only=True) as st:
            for vid in sorted(wanted):
                rows = st.rows("SELECT duration_s FROM videos WHERE video_id = ?", [vid])
                if rows and rows[0]["duration_s"]:
                    durations[vid] = float(rows[0]["duration_s"])
                if needs_video:
                    videos[vid] = VideoContext.load(st, vid, fov_radius or OVERLAY_FOV_RADIUS)
        # keyed by question id, as the released folder's videos are
        videos = {q["id"]: videos[q["video_id"]] for q in questions if q["video_id"] in videos}

    if streaming:
        todo = []
        for q in proactive_qs:
            st_q = state.get(q["id"], {"alert_k": None, "next_k": 1})
            last = stream_polls(q, poll_s, durations.get(q["video_id"]))
            if st_q["alert_k"] is None and st_q["next_k"] <= last:
                todo.append(StreamJob(q, st_q["next_k"], last, poll_s))
        todo = [j for j in todo if j.q["id"] not in missing_videos]  # no video: nothing to poll, no alert
        asked_total = sum(j.last_k - j.first_k + 1 for j in todo)
    else:
        absent = [it for it in todo if it.q["id"] in missing_videos]
        if absent and persist:
            _record_missing(pred_path, absent, missing_videos, model, gaze_prompt)
        asked_total = len(todo) - len(absent)

    counts: dict[str, int] = {}
    errors: list[str] = []
    fleet = dispatch.fleet_for(m, c)
    frame_counts = dispatch.attach_frame_cache(videos.values(), c.frame_cache)
    stoppers: list = []
    t_start = time.perf_counter()
    try:
        to_ask = [j for j in todo if isinstance(j, StreamJob) or j.q["id"] not in missing_videos]
        if batch is not None:
            batch.run(to_ask, videos, pred_path, counts)
        else:
            if protocol == "ours":  # the reference protocol samples its own frames
                to_ask = dispatch.prefetch_frames(m, to_ask, videos, gaze_prompt, frames, stoppers)
            asyncio.run(_run(m, to_ask, videos, pred_path, model, gaze_prompt, frames, concurrency, fleet, timeout_s,
                             counts, prompt_style, asked_total,
                             secrets=[s for u in c.base_urls or (base_url,) for s in url_secrets(u)], errors=errors,
                             protocol=protocol))
    finally:
        for stop in stoppers:
            stop()
        for v in {id(v): v for v in videos.values()}.values():
            v.close()
    elapsed = time.perf_counter() - t_start
    if missing_videos and not streaming:
        counts["missing"] = counts.get("missing", 0) + sum(1 for it in todo if it.q["id"] in missing_videos)
    asked = sum(v for k, v in counts.items() if k != "missing")
    if streaming:
        run_info["last_stream_run"] = {"questions": len(todo), "polls": asked, "outcomes": counts, "seconds": round(elapsed, 3)}
    else:
        run_info["last_run"] = {"asked": len(todo), "already": len(items) - len(todo), "outcomes": counts,
                                "seconds": round(elapsed, 3)}
    dispatch.record(run_info, m, fleet, frame_counts(), "last_stream_run" if streaming else "last_run")
    if persist:
        _write_json(run_path, run_info)
    stored = ""
    if store is not None and persist:
        n = sync_store(out_dir, store_path)
        stored = f"; {n} rows in {store_path} (predictions)"
    outcome_text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing new"
    if missing_videos:
        names = sorted(set(missing_videos.values()))
        stored += (f"; {len(missing_videos)} questions without a video, "
                   f"{'not polled' if streaming else 'recorded as missing'} "
                   f"({', '.join(names[:MISSING_LISTED])}{' ...' if len(names) > MISSING_LISTED else ''})")
    if streaming:
        summary = (f"{out_dir}: streaming, {len(todo)} questions polled ({asked} polls: {outcome_text}), "
                   f"{len(proactive_qs) - len(todo)} already done; {pred_path}{stored}")
    elif batch is not None:
        summary = f"{out_dir}: {batch.summary(len(items) - len(todo))}{stored}"
        return batch.outcome(summary)
    else:
        summary = f"{out_dir}: asked {len(todo)} ({outcome_text}), {len(items) - len(todo)} already answered; {pred_path}{stored}"
    return EvalOutcome(summary, asked=asked, failed=counts.get("error", 0), last_error=errors[-1] if errors else None)


def _release_videos(questions: list[dict], video_root: Path, mode: str, store_path: Path | None, fov_radius: float,
                    allow_missing: bool) -> tuple[dict[str, VideoContext], dict[str, str]]:
    """The video of each question of a released folder (``{question id: VideoContext}``), and the questions
    whose video was not found (``{question id: file name}``; an `InputError` unless ``allow_missing``).

    A video with raw gaze in the store (``store_path``) is read as the store says and the overlay drawn; without,
    ``none`` reads the original video, ``overlay`` the released ``gaze_viz_video`` (checked to match the
    original's frames), and ``salience`` / ``scanpath-text`` are refused: they need the gaze samples."""
    stored: dict[str, VideoContext] = {}
    if store_path is not None:
        with open_store(store_path, read_only=True) as st:
            for vid in sorted({q["video_id"] for q in questions}):
                if st.rows("SELECT 1 FROM videos WHERE video_id = ?", [vid]):
                    ctx = VideoContext.load(st, vid, fov_radius)
                    if len(ctx.track.t):
                        stored[vid] = ctx
    by_file: dict[tuple, VideoContext] = {}
    out: dict[str, VideoContext] = {}
    missing: dict[str, str] = {}
    try:
        for q in questions:
            vid = q["video_id"]
            if vid in stored:
                out[q["id"]] = stored[vid]
                continue
            original = find_video(q, video_root)
            if mode in RAW_GAZE_MODES:
                raise InputError(original or video_root / video_basename(q),
                                 f"--gaze-prompt {mode} needs the raw gaze of video {vid!r}, which the released "
                                 "benchmark does not have (pass --store with its gaze, or use none or overlay)")
            path = gaze_viz_path(q, video_root) if mode == "overlay" else original
            if path is None or not path.is_file():
                missing[q["id"]] = (f"{video_basename(q)} (gaze_viz_video)" if mode == "overlay" and original is not None
                                    else video_basename(q))
                continue
            key = (str(path), str(original))
            if key not in by_file:
                by_file[key] = _file_context(q, path, original if mode == "overlay" else None)
            out[q["id"]] = by_file[key]
    except BaseException:
        for ctx in {id(v): v for v in [*stored.values(), *by_file.values()]}.values():
            ctx.close()
        raise
    if missing and not allow_missing:
        names = sorted(set(missing.values()))
        shown = ", ".join(names[:MISSING_LISTED]) + (f" and {len(names) - MISSING_LISTED} more" if len(names) > MISSING_LISTED else "")
        where = "gaze_viz_video/<name>, " if mode == "overlay" else ""
        raise InputError(video_root, f"{len(names)} video{'s' if len(names) != 1 else ''} not found ({shown}; "
                                     f"{len(missing)} questions): looked for the item's video_path, {where}"
                                     "original_video/<name> and <name>; --allow-missing scores their questions as missing")
    return out, missing


def _file_context(q: dict, path: Path, original: Path | None) -> VideoContext:
    """A question's video read from its file; ``original``: ``path`` is its gaze_viz video, which must have the
    same frames (count and duration within about a frame)."""
    where = f" (the video of {q['id']})"
    try:
        info = probe_video(path)
    except InputError as exc:
        raise InputError(exc.path, exc.problem + where) from None
    if original is not None:
        try:
            ref = probe_video(original)
        except InputError as exc:
            raise InputError(exc.path, exc.problem + where) from None
        frame_s = 1.0 / ref.fps
        if abs(info.n_frames - ref.n_frames) > 1 or abs(info.duration_s - ref.duration_s) > 1.5 * frame_s:
            raise InputError(path, f"the gaze_viz video does not match the original {original.name} "
                                   f"({info.n_frames} frames, {info.duration_s:.2f} s against {ref.n_frames}, "
                                   f"{ref.duration_s:.2f} s){where}")
    return VideoContext.from_file(q["video_id"], info, gaze_drawn=original is not None)


def _record_missing(pred_path: Path, items: list[Item], missing: dict[str, str], model: str, mode: str) -> None:
    """Rows with outcome ``missing`` (wrong in the score) for the items whose video was not found; a rerun asks
    them again."""
    with open(pred_path, "a", encoding="utf-8") as fh:
        for it in items:
            row = {"question_id": it.q["id"], "task": it.q["task"], "point_idx": it.point_idx,
                   **({"t_s": it.t_s} if it.proactive else {}), "model": model, "gaze_prompt": mode,
                   "response": None, "parsed": None, "parse": "missing", "outcome": "missing", "latency_s": 0.0,
                   "frames": [], "missing_video": missing[it.q["id"]]}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()


def _write_json(path: Path, obj: dict) -> None:
    """Write via a temporary file and rename, so a kill never leaves a half-written run.json."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _git_commit(path: Path) -> str | None:
    """The git commit of the QA folder's repository (with "-dirty" if it has changes), or None."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        commit = out.stdout.strip()
        st = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=5)
        return commit + ("-dirty" if st.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def sync_store(run_dir, store_path) -> int:
    """Mirror the run's predictions (the last row per item) and streaming polls into the store's
    ``predictions`` table: the run's rows are replaced in one transaction. Returns the row count."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / RUN).read_text())
    run_id = str(run_dir.resolve())
    rows = []
    for name, style in ((PREDICTIONS, info.get("prompt_style") or "windowed"), (STREAM, "streaming")):
        latest: dict[tuple, dict] = {}
        for r in read_predictions(run_dir / name):
            latest[(r["question_id"], int(r.get("point_idx", -1)))] = r
        for r in latest.values():
            rows.append({"run_id": run_id, "question_id": r["question_id"], "task": r.get("task"),
                         "point_idx": int(r.get("point_idx", -1)), "t_s": r.get("t_s"), "model": r.get("model") or info.get("model"),
                         "gaze_prompt": r.get("gaze_prompt") or info.get("gaze_prompt"), "prompt_style": style,
                         "response": r.get("response"), "parsed": r.get("parsed"), "outcome": r.get("outcome"),
                         "latency_s": r.get("latency_s")})
    cols = ["run_id", "question_id", "task", "point_idx", "t_s", "model", "gaze_prompt", "prompt_style", "response",
            "parsed", "outcome", "latency_s"]
    types = {"point_idx": pa.int32(), "t_s": pa.float64(), "latency_s": pa.float64()}
    table = pa.table({c: pa.array([r[c] for r in rows], type=types.get(c, pa.string())) for c in cols})
    with open_store(store_path) as st:
        # stores made before the prompt_style column
        st.con.execute("ALTER TABLE predictions ADD COLUMN IF NOT EXISTS prompt_style VARCHAR")
        with st.transaction():
            st.con.execute("DELETE FROM predictions WHERE run_id = ?", [run_id])
            st.insert("predictions", table, cols)
    return len(rows)


async def _run(m, todo, videos, pred_path, model_name, mode, n_frames, concurrency, fleet, timeout_s,
               counts, prompt_style="windowed", total=None, secrets=(), errors=None, protocol="ours"):
    """Workers take items (one request each) or stream jobs (polls in order until the first "yes") off a queue;
    every reply is appended to ``pred_path`` and flushed at once."""
    queue: asyncio.Queue = asyncio.Queue()
    for it in todo:
        queue.put_nowait(it)
    loop = asyncio.get_running_loop()
    n_videos = len({id(v) for v in videos.values()})
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, n_videos * 2 or 1)))
    fh = open(pred_path, "a", encoding="utf-8")
    streaming = Path(pred_path).name == STREAM

    async def ask_one(it: Item, advance) -> dict:
        video = videos.get(it.q["id"])
        if getattr(m, "uses_frames", True) and video is not None:  # frames: decoded in a worker thread
            req = await loop.run_in_executor(pool, build_request, it, m, mode, n_frames, video, prompt_style, protocol)
        else:
            req = build_request(it, m, mode, n_frames, video, prompt_style, protocol)
        text, error, latency = await dispatch.ask(m, req, fleet, timeout_s, secrets)
        if error is not None and errors is not None:
            errors.append(error)
        row = answer_row(it, req, text, error, latency, model_name, mode, streaming)
        outcome = row["outcome"]
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        counts[outcome] = counts.get(outcome, 0) + 1
        advance(1)
        return row

    async def worker(advance) -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if isinstance(job, StreamJob):
                for k in range(job.first_k, job.last_k + 1):
                    row = await ask_one(job.item(k), advance)
                    if row["outcome"] == "error":
                        break  # asked again by the next run
                    if row["parsed"] == "yes":
                        break  # the alert
            else:
                await ask_one(job, advance)

    try:
        with stage("eval" if not streaming else "stream", total=total if total is not None else len(todo)) as advance:
            await asyncio.gather(*(worker(advance) for _ in range(max(1, min(concurrency, len(todo) or 1)))))
    finally:
        fh.close()
        pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(m, "aclose", None)
        if close is not None:
            await close()
