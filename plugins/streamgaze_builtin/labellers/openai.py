"""The ``openai`` object labeller: region-specific visual prompting through any OpenAI-compatible multimodal model
(OpenAI, Azure, vLLM, Ollama, llama.cpp server).

For each dwell episode it picks ``frames`` evenly spaced frames inside the episode (read by seeking), draws the
region prompt on each (the FOV circle and the gaze dot, with `streamgaze.gaze.overlay.draw_gaze`) and cuts the FOV crop,
then asks the model for one JSON object per frame (`FrameAnswer`). A reply that does not validate is asked again
once, with the validation error; a second failure is recorded with its reason. The episode's gazed object is the
most frequent normalised name (`streamgaze.tasks.names.key`) over its frames; the fov and outside names are those
named in at least ``min_share`` of its answered frames. See docs/objects.md.

Requests run concurrently (at most ``concurrency`` in flight), are retried with backoff on 429/5xx/timeouts, and
every reply is cached on disk under the sha256 of the request (model, messages with the images, decoding
settings), so a rerun sends no request. Per-episode requests, tokens, cost and latency go to ``label_requests``.
The API key (``api_key`` option or ``OPENAI_API_KEY``) is never written: not to the cache, the store or errors.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from streamgaze.plugins.api import (
    DEFAULT_ENDPOINT,
    FOV_RADIUS,
    GazeTrack,
    UNANSWERED,
    InputError,
    Labelled,
    Labeller,
    RetriesExhausted,
    draw_gaze,
    image_part,
    openai_fleet,
    names,
    read_frames_at,
    redact_url,
    resolve_api_key,
    resolve_video_path,
    settings_digest,
    stage,
    url_secrets,
)

LABELLER = "openai"
PROMPT_VERSION = "v1"  # part of every cache key: change it when the prompt's meaning changes

SYSTEM_PROMPT = (
    "You label objects in frames of egocentric (head-mounted camera) video for an eye-tracking study. "
    "Answer with one JSON object only, no prose, no code fences."
)

USER_PROMPT = """Image 1 is a video frame. The GREEN DOT marks where the person is looking; the RED CIRCLE around it \
is their field of view (FOV). Image 2 is a crop of the same frame around the FOV (without the marks).

Name the objects:
- "gazed_object": the single object under the green dot (the one the person looks at), or null if there is none.
  Give its "name" (a short common noun phrase, e.g. "cutting board"), its "attributes" ("color", "material",
  "shape", "state", "texture": one or two words each, or null when not visible) and a one-sentence "caption".
- "fov_objects": the names of the other objects inside the red circle.
- "outside_objects": the names of the objects visible in the frame outside the red circle.
Use singular names, no people or body parts, each object once.

Reply with exactly this JSON shape:
{"gazed_object": {"name": "...", "attributes": {"color": "...", "material": "...", "shape": "...", "state": "...", \
"texture": "..."}, "caption": "..."}, "fov_objects": ["..."], "outside_objects": ["..."]}"""

FIX_PROMPT = ("Your reply was not valid: {error}\nReply again with only the JSON object, exactly in the shape asked "
              "for.")

ATTRIBUTES = ("color", "material", "shape", "state", "texture")


# ---- the answer schema -------------------------------------------------------------------------------------------

def _text_or_none(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        v = ", ".join(str(x) for x in v if x is not None)
    if isinstance(v, str):
        v = v.strip()
        return v if v and v.lower() not in ("null", "none", "n/a", "unknown") else None
    return v


def _name(v: Any) -> Any:
    if isinstance(v, dict) and "name" in v:
        v = v["name"]
    return v.strip() if isinstance(v, str) else v


Text = Annotated[str | None, BeforeValidator(_text_or_none)]
Name = Annotated[str, BeforeValidator(_name), Field(min_length=1)]


class Attributes(BaseModel):
    model_config = ConfigDict(extra="ignore")
    color: Text = None
    material: Text = None
    shape: Text = None
    state: Text = None
    texture: Text = None


class GazedObject(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Name
    attributes: Attributes = Field(default_factory=Attributes)
    caption: Text = None


class FrameAnswer(BaseModel):
    """One frame's answer."""

    model_config = ConfigDict(extra="ignore")
    gazed_object: GazedObject | None
    fov_objects: list[Name] = Field(default_factory=list)
    outside_objects: list[Name] = Field(default_factory=list)


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_answer(text: str) -> FrameAnswer:
    """The reply as a `FrameAnswer`; tolerates code fences and text around one JSON object. Raises ValueError
    with a short reason."""
    s = _FENCE.sub("", (text or "").strip())
    if not s.startswith("{"):
        i, j = s.find("{"), s.rfind("}")
        if i < 0 or j <= i:
            raise ValueError("no JSON object in the reply")
        s = s[i:j + 1]
    try:
        return FrameAnswer.model_validate_json(s)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()[:5])
        raise ValueError(errs) from None


# ---- settings ----------------------------------------------------------------------------------------------------

def _num(options: dict, name: str, default, cast=float, lo=None, hi=None, lo_open=False):
    v = options.get(name, default)
    if v is None:
        return None
    try:
        v = cast(v)
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ValueError
        if hi is not None and v > hi:
            raise ValueError
    except (TypeError, ValueError):
        rng = f" in {'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]" if lo is not None else ""
        raise InputError(f"option {name}", f"{options.get(name)!r} is not a valid number{rng}") from None
    return v


@dataclass
class Settings:
    model: str
    base_url: str | None = field(repr=False)  # may hold a key (user info, ?api-key=): recorded as `endpoint`
    api_key: str = field(repr=False)
    concurrency: int = 8
    frames: int = 3
    fov_radius: float | None = None  # fraction of the frame width
    fov_radius_px: float | None = None
    fov_radius_deg: float | None = None
    camera_hfov_deg: float | None = None
    min_share: float = 0.5
    retries: int | None = None  # at most this many attempts per request (None: until retry_budget_s is spent)
    retry_budget_s: float = 600.0
    backoff_s: float = 0.5
    timeout_s: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.0
    json_retries: int = 1
    response_format: str = "json_object"
    jpeg_quality: int = 85
    max_side: int = 1024
    crop_min_side: int = 224
    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None
    cache_dir: Path | None = None
    base_urls: tuple[str, ...] = field(default=(), repr=False)  # every endpoint (``--base-url`` repeated)
    batch: Any = field(default=None, repr=False)  # a `streamgaze.llm.batch.BatchSession`: Batch files, not HTTP

    @classmethod
    def from_options(cls, options: dict, store_path: Path) -> "Settings":
        model = options.get("model")
        if not model:
            raise InputError("option model", "the openai labeller needs a model name (--model)")
        urls = options.get("base_url") or None
        urls = tuple(str(u) for u in urls) if isinstance(urls, (list, tuple)) else ((str(urls),) if urls else ())
        base_url = urls[0] if urls else None
        # Batch files are written or read without a request: no key needed then
        api_key = ("unused" if options.get("batch") is not None
                   else resolve_api_key(options.get("api_key"), base_url, "the openai labeller"))
        fmt = str(options.get("response_format", "json_object"))
        if fmt not in ("json_object", "json_schema", "none"):
            raise InputError("option response_format", f"{fmt!r}: expected json_object, json_schema or none")
        cache = options.get("cache_dir")
        s = cls(
            model=str(model), base_url=base_url, api_key=api_key,
            concurrency=_num(options, "concurrency", 8, int, 1),
            frames=_num(options, "frames", 3, int, 1, 64),
            fov_radius=_num(options, "fov_radius", None, float, 0, 1, lo_open=True),
            fov_radius_px=_num(options, "fov_radius_px", None, float, 0, lo_open=True),
            fov_radius_deg=_num(options, "fov_radius_deg", None, float, 0, 180, lo_open=True),
            camera_hfov_deg=_num(options, "camera_hfov_deg", None, float, 0, 360, lo_open=True),
            min_share=_num(options, "min_share", 0.5, float, 0, 1),
            retries=_num(options, "retries", None, int, 1, 100),
            retry_budget_s=_num(options, "retry_budget_s", 600.0, float, 0),
            backoff_s=_num(options, "backoff_s", 0.5, float, 0),
            timeout_s=_num(options, "timeout_s", 60.0, float, 0, lo_open=True),
            max_tokens=_num(options, "max_tokens", 512, int, 1),
            temperature=_num(options, "temperature", 0.0, float, 0, 2),
            json_retries=_num(options, "json_retries", 1, int, 0, 10),
            response_format=fmt,
            jpeg_quality=_num(options, "jpeg_quality", 85, int, 1, 100),
            max_side=_num(options, "max_side", 1024, int, 16),
            crop_min_side=_num(options, "crop_min_side", 224, int, 0),
            usd_per_mtok_in=_num(options, "usd_per_mtok_in", None, float, 0),
            usd_per_mtok_out=_num(options, "usd_per_mtok_out", None, float, 0),
            cache_dir=Path(cache) if cache else Path(str(store_path) + ".cache") / "openai",
            base_urls=urls,
            batch=options.get("batch"),
        )
        if s.fov_radius_deg is not None and s.camera_hfov_deg is None:
            raise InputError("option fov_radius_deg", "needs camera_hfov_deg (the scene camera's horizontal field of "
                                                      "view in degrees) to convert degrees to pixels")
        return s

    def radius_fraction(self, width: int) -> float:
        """The FOV radius as a fraction of the frame width: px, then degrees, then the fraction (default 0.15)."""
        if self.fov_radius_px is not None:
            return self.fov_radius_px / width
        if self.fov_radius_deg is not None:
            return self.fov_radius_deg / self.camera_hfov_deg  # linear: radius_px = deg / hfov * width
        if self.fov_radius is not None:
            return self.fov_radius
        return FOV_RADIUS

    def batch_digest(self) -> str:
        """The settings part of this labeller's Batch custom_ids: what shapes a request besides the frames."""
        keep = ("model", "frames", "fov_radius", "fov_radius_px", "fov_radius_deg", "camera_hfov_deg", "max_tokens",
                "temperature", "response_format", "jpeg_quality", "max_side", "crop_min_side")
        return settings_digest({"labeller": LABELLER, "prompt": PROMPT_VERSION, **{k: getattr(self, k) for k in keep}})

    def response_format_param(self) -> dict | None:
        if self.response_format == "json_object":
            return {"type": "json_object"}
        if self.response_format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "frame_objects",
                                                           "schema": FrameAnswer.model_json_schema()}}
        return None


# ---- frames and images -------------------------------------------------------------------------------------------

@dataclass
class Frame:
    """One frame of one episode as the model sees it."""

    episode_id: str
    idx: int
    x: float
    y: float
    images: list[bytes] = field(default_factory=list)  # [region prompt, FOV crop]
    error: str | None = None


def frame_plan(t0: float, t1: float, fps: float, n_frames: int, n: int) -> list[int]:
    """``n`` evenly spaced frame indices strictly inside [t0, t1] (at (k+1)/(n+1) of the span), deduplicated."""
    out: list[int] = []
    for k in range(n):
        t = t0 + (k + 1) / (n + 1) * (t1 - t0)
        idx = min(max(int(round(t * fps)), 0), max(n_frames - 1, 0))
        if idx not in out:
            out.append(idx)
    return out


def _jpeg(img: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _fit(img: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def region_images(frame: np.ndarray, x: float, y: float, radius: float, s: Settings) -> list[bytes]:
    """[the frame with the FOV circle and gaze dot drawn by `draw_gaze`, the FOV crop of the raw frame]."""
    import cv2

    h, w = frame.shape[:2]
    marked = draw_gaze(frame.copy(), x, y, radius)
    r = max(8, int(round(radius * w)))
    cx, cy = int(round(x * w)), int(round(y * h))
    x0, x1 = max(0, cx - r), min(w, cx + r)
    y0, y1 = max(0, cy - r), min(h, cy + r)
    if x1 - x0 < 2 or y1 - y0 < 2:  # gaze outside the frame: the crop is the nearest border strip
        x0, x1 = min(max(0, cx - r), w - 2), min(max(2, cx + r), w)
        y0, y1 = min(max(0, cy - r), h - 2), min(max(2, cy + r), h)
    crop = frame[y0:y1, x0:x1]
    short = min(crop.shape[:2])
    if 0 < short < s.crop_min_side:
        k = s.crop_min_side / short
        crop = cv2.resize(crop, (round(crop.shape[1] * k), round(crop.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    return [_jpeg(_fit(marked, s.max_side), s.jpeg_quality), _jpeg(_fit(crop, s.max_side), s.jpeg_quality)]


def prepare_frames(store, video: dict, episodes: list[dict], s: Settings) -> list[Frame]:
    """Read every planned frame of the video once (sorted, by seeking) and build its two images."""

    path = resolve_video_path(store.path, video.get("path"))
    if not video.get("path") or not path.is_file():
        raise InputError(path, f"video file of {video['video_id']!r} not found (the openai labeller needs frames)")
    fps = float(video.get("fps") or 0)
    n_frames = int(video.get("n_frames") or round(fps * float(video.get("duration_s") or 0)) or 0)
    if fps <= 0 or n_frames <= 0:
        raise InputError(f"video {video['video_id']}", "has no fps or frame count in the store")
    radius = s.radius_fraction(int(video.get("width") or 0) or 1)
    track = GazeTrack.from_store(store, video["video_id"])
    frames: list[Frame] = []
    for ep in episodes:
        idx = frame_plan(float(ep["t_start"]), float(ep["t_end"]), fps, n_frames, s.frames)
        gx, gy, found = track.at([i / fps for i in idx], max(1.0 / fps, 0.05))
        for i, fx, fy, ok in zip(idx, gx, gy, found):
            if not ok:  # no valid sample at the frame: the episode's centre
                fx, fy = ep.get("x"), ep.get("y")
            f = Frame(ep["episode_id"], i, float("nan") if fx is None else float(fx),
                      float("nan") if fy is None else float(fy))
            if not (math.isfinite(f.x) and math.isfinite(f.y)):
                f.error = f"frame {i}: no gaze position"
            frames.append(f)
    wanted = sorted({f.idx for f in frames if f.error is None})
    images = dict(zip(wanted, read_frames_at(path, wanted))) if wanted else {}
    for f in frames:
        if f.error is None:
            img = images.get(f.idx)
            if img is None:
                f.error = f"frame {f.idx}: cannot be read from {path.name}"
            else:
                f.images = region_images(img, f.x, f.y, radius, s)
    return frames


# ---- requests, cache, retries ------------------------------------------------------------------------------------

@dataclass
class Reply:
    content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0  # of the requests sent in this run
    sent: int = 0  # HTTP requests sent in this run (retries included)
    cost_usd: float = 0.0
    cached: bool = False
    error: str | None = None
    reason: str | None = None  # the request failed: why, in a few words ("connection refused", "HTTP 500")


def failure_reason(exc: BaseException) -> str:
    """A failed request's cause in a few words, for the stage's summary line."""
    code = getattr(exc, "status_code", None)
    if code:
        return f"HTTP {code}"
    seen, e = set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return "connection refused"
        if isinstance(e, (TimeoutError, asyncio.TimeoutError)) or "timeout" in type(e).__name__.lower():
            return "timed out"
        e = e.__cause__ or e.__context__
    return type(exc).__name__


class Cache:
    """One JSON file per request under ``dir/<h[:2]>/<h>.json``, written atomically; holds the reply only."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, h: str) -> Path:
        return self.root / h[:2] / f"{h}.json"

    def get(self, h: str) -> dict | None:
        try:
            return json.loads(self._path(h).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, h: str, value: dict) -> None:
        p = self._path(h)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(value, sort_keys=True), encoding="utf-8")
        os.replace(tmp, p)


def request_body(s: Settings, messages: list[dict]) -> dict:
    body: dict[str, Any] = {"model": s.model, "messages": messages, "temperature": s.temperature,
                            "max_tokens": s.max_tokens}
    fmt = s.response_format_param()
    if fmt is not None:
        body["response_format"] = fmt
    return body


def request_hash(body: dict) -> str:
    """sha256 of the request as sent (model, messages with the base64 images, decoding settings) and the prompt
    version; the endpoint and the key are not part of it."""
    return hashlib.sha256(json.dumps([PROMPT_VERSION, body], sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Asker:
    def __init__(self, s: Settings):
        self.s = s
        self.cache = Cache(s.cache_dir)
        self.fleet = None  # routes, limits and retries the requests (`streamgaze.llm.fleet`)
        self.video_id = ""

    def _cost(self, pt: int, ct: int) -> float:
        return ((self.s.usd_per_mtok_in or 0.0) * pt + (self.s.usd_per_mtok_out or 0.0) * ct) / 1e6

    async def complete(self, messages: list[dict], about: dict | None = None) -> Reply:
        """One chat completion: from the cache, or sent with retries (backoff on 429/5xx/timeouts)."""
        s = self.s
        body = request_body(s, messages)
        h = request_hash(body)
        if s.batch is not None:
            s.batch.expect(s.batch_digest(), h)  # one of this run's requests, cached or not
        hit = await asyncio.to_thread(self.cache.get, h)
        if hit is not None:
            return Reply(hit.get("content"), int(hit.get("prompt_tokens") or 0),
                         int(hit.get("completion_tokens") or 0), cached=True)
        reply = Reply()
        if s.batch is not None:
            return await self._from_batch(body, h, reply, about or {})

        async def attempt(client):
            t0 = time.perf_counter()
            reply.sent += 1
            try:
                return await client.chat.completions.create(**body)
            finally:
                reply.latency_s += time.perf_counter() - t0

        try:
            resp = await self.fleet.call(attempt)
        except RetriesExhausted as failed:
            secrets = [x for u in s.base_urls or (s.base_url,) for x in url_secrets(u)]
            reply.error = failed.line(s.api_key, *secrets, status=True, limit=300) + f" (after {failed.attempts} attempt(s))"
            reply.reason = failure_reason(failed.error)
            return reply
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        content = (resp.choices[0].message.content or "") if resp.choices else ""
        return await self._answered(reply, h, content, pt, ct)

    async def _answered(self, reply: Reply, h: str, content: str, pt: int, ct: int) -> Reply:
        """An answer (online or from a Batch result): counted, priced and cached the same way."""
        reply.content, reply.prompt_tokens, reply.completion_tokens = content, pt, ct
        reply.cost_usd += self._cost(pt, ct)
        await asyncio.to_thread(self.cache.put, h, {"content": content, "prompt_tokens": pt,
                                                    "completion_tokens": ct, "model": self.s.model})
        return reply

    async def _from_batch(self, body: dict, h: str, reply: Reply, about: dict) -> Reply:
        """Batch mode: write the request to the Batch files (``about``: its episode and frame, for the manifest),
        or take its answer from the Batch results."""
        batch, digest = self.s.batch, self.s.batch_digest()
        if batch.mode == "write":
            batch.add(digest, h, body, video_id=self.video_id, **about)
            reply.error = reply.reason = UNANSWERED
            return reply
        res = batch.take(digest, h)
        if res is None:
            reply.error = reply.reason = UNANSWERED
            return reply
        if res.error is not None:
            reply.error, reply.reason = f"failed in the batch: {res.error}"[:300], "failed in the batch"
            return reply
        return await self._answered(reply, h, res.text or "", res.prompt_tokens, res.completion_tokens)


@dataclass
class FrameResult:
    frame: Frame
    answer: FrameAnswer | None = None
    error: str | None = None
    failed: str | None = None  # the request failed (not the answer): `failure_reason`
    sent: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0

    def add(self, r: Reply) -> None:
        self.sent += r.sent
        self.cached += int(r.cached)
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        self.cost_usd += r.cost_usd
        self.latency_s += r.latency_s


def frame_messages(frame: Frame) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": [{"type": "text", "text": USER_PROMPT},
                                         *(image_part(b) for b in frame.images)]}]


async def ask_frame(asker: Asker, frame: Frame) -> FrameResult:
    """Ask about one frame; an invalid reply is asked again (``json_retries`` times) with the validation error."""
    res = FrameResult(frame)
    if frame.error:
        res.error = frame.error
        return res
    messages = frame_messages(frame)
    for round_ in range(asker.s.json_retries + 1):
        reply = await asker.complete(messages, {"episode_id": frame.episode_id, "frame": frame.idx,
                                                "round": round_})
        res.add(reply)
        if reply.error:
            res.error = f"frame {frame.idx}: request failed: {reply.error}"
            res.failed = reply.reason or "request failed"
            return res
        try:
            res.answer = parse_answer(reply.content or "")
            res.error = None
            return res
        except ValueError as exc:
            res.error = f"frame {frame.idx}: invalid JSON answer ({round_ + 1} tries): {exc}"[:400]
            messages = messages + [{"role": "assistant", "content": reply.content or ""},
                                   {"role": "user", "content": FIX_PROMPT.format(error=str(exc)[:500])}]
    return res


async def ask_all(s: Settings, frames: list[Frame], advance, video_id: str = "") -> list[FrameResult]:
    asker = Asker(s)
    asker.video_id = video_id
    asker.fleet = openai_fleet(s.api_key, s.base_urls or (s.base_url,), s.timeout_s, ceiling=s.concurrency,
                               budget_s=s.retry_budget_s, backoff_s=s.backoff_s, max_attempts=s.retries)
    try:
        async def one(f: Frame) -> FrameResult:
            r = await ask_frame(asker, f)
            advance(1)
            return r

        return list(await asyncio.gather(*(one(f) for f in frames)))
    finally:
        s.endpoint_stats = asker.fleet.stats()
        await asker.fleet.aclose()


def _run(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():  # called from inside a running loop (a notebook): run in a thread of its own
        try:
            box["v"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001
            box["e"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


# ---- episodes ----------------------------------------------------------------------------------------------------

def episode_rows(episode_id: str, results: list[FrameResult], min_share: float) -> list[dict]:
    """Object rows of one episode from its answered frames (roles disjoint: gazed > fov > outside)."""
    answers = [r.answer for r in results if r.answer is not None]
    if not answers:
        return []
    rows: list[dict] = []
    gazed_keys = [names.key(a.gazed_object.name) if a.gazed_object else "" for a in answers]
    counts = Counter(k for k in gazed_keys if k)
    taken: set[str] = set()
    if counts:
        best = max(counts.values())
        rep = next(k for k in gazed_keys if k and counts[k] == best)  # ties: the earliest frame's
        first = answers[gazed_keys.index(rep)].gazed_object
        attrs = {a: v for a in ATTRIBUTES if (v := getattr(first.attributes, a))}
        if first.caption:
            attrs["caption"] = first.caption
        rows.append({"episode_id": episode_id, "name": rep, "role": "gazed", "attributes": attrs})
        taken.add(rep)
    need = max(1, math.ceil(min_share * len(answers) - 1e-9))
    for role, get in (("fov", lambda a: a.fov_objects), ("outside", lambda a: a.outside_objects)):
        c: Counter = Counter()
        for a in answers:
            c.update({k for n in get(a) if (k := names.key(n))})
        for k in sorted(k for k, n in c.items() if n >= need and k not in taken):
            rows.append({"episode_id": episode_id, "name": k, "role": role, "attributes": {}})
            taken.add(k)
    return rows


def episode_stats(video_id: str, episode_id: str, results: list[FrameResult], s: Settings) -> dict:
    errors = [r.error for r in results if r.error]
    n_ok = sum(r.answer is not None for r in results)
    status = "ok" if not errors else ("partial" if n_ok else "failed")
    priced = s.usd_per_mtok_in is not None or s.usd_per_mtok_out is not None
    return {
        "video_id": video_id, "episode_id": episode_id, "labeller": LABELLER, "model": s.model,
        "n_requests": sum(r.sent for r in results), "n_cached": sum(r.cached for r in results),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "cost_usd": round(sum(r.cost_usd for r in results), 8) if priced else None,
        "latency_s": round(sum(r.latency_s for r in results), 4),
        "cached": bool(results) and all(r.sent == 0 for r in results) and sum(r.cached for r in results) > 0,
        "status": status, "error": "; ".join(errors)[:2000] if errors else None,
    }


class OpenAILabeller(Labeller):
    """Asks any OpenAI-compatible multimodal model about each episode's frames with the gaze region marked."""

    name = LABELLER
    supports_batch = True  # `objects --batch-write/--batch-read/--batch`: the `batch` option (a BatchSession)

    def __init__(self):
        self._side: dict[str, list[dict]] = {}
        self.last_run: dict = {}

    def label(self, store, video: dict, episodes: list[dict], options: dict) -> list[dict]:
        s = Settings.from_options(options, store.path)
        vid = video["video_id"]
        t0 = time.perf_counter()
        frames = prepare_frames(store, video, episodes, s)
        t_prep = time.perf_counter() - t0
        with stage("openai", total=len(frames) or None) as advance:
            t1 = time.perf_counter()
            results = _run(ask_all(s, frames, advance, vid))
            t_ask = time.perf_counter() - t1
        by_ep: dict[str, list[FrameResult]] = {}
        for r in results:
            by_ep.setdefault(r.frame.episode_id, []).append(r)
        rows: list[dict] = []
        stats: list[dict] = []
        failed: dict[str, str] = {}  # episodes with a failed request keep their previous rows (the stage)
        for ep in episodes:
            eid = ep["episode_id"]
            rs = by_ep.get(eid, [])
            reasons = [r.failed for r in rs if r.failed]
            if reasons:
                failed[eid] = Counter(reasons).most_common(1)[0][0]
            else:
                rows.extend(episode_rows(eid, rs, s.min_share))
            stats.append(episode_stats(vid, eid, rs, s))
        self._side[vid] = stats
        self.last_run = {"video_id": vid, "frames": len(frames), "requests": sum(r.sent for r in results),
                         "cached": sum(r.cached for r in results), "prepare_s": t_prep, "ask_s": t_ask,
                         "failed": sum(st["status"] == "failed" for st in stats),
                         "endpoint": redact_url(s.base_url or DEFAULT_ENDPOINT),
                         "endpoints": getattr(s, "endpoint_stats", [])}
        if failed:
            asked = [r for r in results if not r.frame.error]
            return Labelled(rows, failed, requests=len(asked), failed_requests=sum(bool(r.failed) for r in asked))
        return rows

    def side_tables(self, video_id: str) -> dict[str, list[dict]]:
        """Rows of other tables for ``video_id`` (written in the objects stage's transaction): ``label_requests``."""
        return {"label_requests": self._side.pop(video_id, [])}



__all__ = ["OpenAILabeller", "FrameAnswer", "GazedObject", "Attributes", "USER_PROMPT", "SYSTEM_PROMPT",
           "parse_answer", "frame_plan", "request_hash", "DEFAULT_ENDPOINT"]
