"""`EvalConfig`: everything one ``streamgaze eval`` run needs besides the question folder, checked once.

``run_eval(qa_dir, EvalConfig(model="first-option", out_dir="R"))``; a value out of range is one line naming
the field (a `StreamGazeError`), never silently clamped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from streamgaze.errors import StreamGazeError
from streamgaze.eval import prompts, reference_protocol
from streamgaze.llm.client import redact_url
from streamgaze.shards import Shard, shard_of


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run: the model and its endpoint, the run folder, the prompt and frame policy, retries and
    timeouts, and the streaming alert metric's poll interval and tolerance."""

    model: str
    out_dir: Path
    base_url: str | None = None
    concurrency: int = 8
    gaze_prompt: str = "none"
    store: Path | None = None
    seed: int = 0
    frames: int = 16
    retries: int | None = None  # at most this many attempts per request (None: until retry_budget_s is spent)
    backoff_s: float = 1.0
    fov_radius: float | None = None
    max_tokens: int | None = None  # None: the protocol's (16 ours, 1536 reference)
    timeout_s: float = 60.0
    prompt_style: str | None = None  # None: the protocol's (windowed ours, reference reference)
    streaming: bool = False
    poll_s: float = 1.0
    tolerance_s: float = 3.0
    videos: Path | None = None  # a released benchmark's videos folder: eval with no store (`release`)
    allow_missing: bool = False  # with ``videos``: record the questions of videos not found as missing
    base_urls: tuple[str, ...] = ()  # every endpoint (``--base-url`` repeated); ``base_url`` is the first
    retry_budget_s: float = 600.0  # a request is retried (jittered exponential backoff) until this much time passed
    frame_cache: Path | bool = True  # the on-disk frame cache: True its default folder, False none, or a folder
    shard: Shard | None = None  # only the questions of this shard's videos (`streamgaze.shards`); "K/N" accepted
    protocol: str = "ours"  # or "reference": the reference harness's clips, frames and defaults (reference_protocol)
    temperature: float | None = None  # None: the protocol's (0 ours, 0.7 reference)
    top_p: float | None = None  # None: the protocol's (not sent ours, 0.8 reference)

    def __post_init__(self) -> None:
        if self.protocol not in reference_protocol.PROTOCOLS:
            raise StreamGazeError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(reference_protocol.PROTOCOLS)}")
        effective = reference_protocol.resolve(self.protocol, self.prompt_style, self.temperature, self.top_p, self.max_tokens)
        for name, value in effective.items():
            object.__setattr__(self, name, value)
        if not isinstance(self.model, str) or not self.model.strip():
            raise StreamGazeError("model: give a model name, e.g. first-option or openai:gpt-4o")
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.store is not None:
            object.__setattr__(self, "store", Path(self.store))
        if self.videos is not None:
            object.__setattr__(self, "videos", Path(self.videos))
        if isinstance(self.base_url, (list, tuple)):  # several endpoints given as base_url
            object.__setattr__(self, "base_urls", tuple(self.base_url))
            object.__setattr__(self, "base_url", self.base_urls[0] if self.base_urls else None)
        object.__setattr__(self, "base_urls", tuple(self.base_urls))
        if self.base_urls and self.base_url is None:
            object.__setattr__(self, "base_url", self.base_urls[0])
        if self.frame_cache not in (True, False):
            object.__setattr__(self, "frame_cache", Path(self.frame_cache))
        try:
            object.__setattr__(self, "shard", shard_of(self.shard))
        except ValueError as exc:
            raise StreamGazeError(f"shard: {exc}") from None
        for name, low in (("concurrency", 1), ("frames", 1), ("retries", 0), ("max_tokens", 1)):
            value = getattr(self, name)
            if name == "retries" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise StreamGazeError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, positive in (("timeout_s", True), ("poll_s", True), ("backoff_s", False), ("tolerance_s", False),
                               ("retry_budget_s", False)):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            if bad or (value <= 0 if positive else value < 0):
                raise StreamGazeError(f"{name} must be a number {'>' if positive else '>='} 0, got {value!r}")
        for name, high in (("temperature", 2.0), ("top_p", 1.0)):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            if value is not None and (bad or not 0 <= value <= high):
                raise StreamGazeError(f"{name} must be a number from 0 to {high:g}, got {value!r}")
        if self.fov_radius is not None and not (isinstance(self.fov_radius, (int, float)) and self.fov_radius > 0):
            raise StreamGazeError(f"fov_radius must be a number > 0, got {self.fov_radius!r}")
        for url in (self.base_url, *self.base_urls):
            if url is not None and not _http_url(url):
                raise StreamGazeError(f"base_url must be an http:// or https:// URL with a host, got {redact_url(str(url))!r}")
        if self.gaze_prompt not in prompts.GAZE_MODES:
            raise StreamGazeError(f"unknown gaze prompt {self.gaze_prompt!r}; choose one of {', '.join(prompts.GAZE_MODES)}")
        if self.prompt_style not in prompts.PROMPT_STYLES:
            raise StreamGazeError(f"unknown prompt style {self.prompt_style!r}; choose one of {', '.join(prompts.PROMPT_STYLES)}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _http_url(url) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
