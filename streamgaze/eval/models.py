"""The model protocol: what the runner sends (`Request`), what a model returns (raw text), and how a
``--model`` name finds its factory among the ``streamgaze_models`` plugins.

A factory is ``factory(spec: str, options: ModelOptions) -> Model``; ``spec`` is the part after the colon for
names like ``openai:gpt-4o`` (empty for plain names). A model is any object with

- ``async def ask(self, request: Request) -> str`` (the raw reply; raise to signal a failure, see `retryable`),
- ``uses_frames: bool`` (False: the runner skips frame extraction, e.g. the baselines and ``text-only:``),
- ``uses_prompt: bool`` (False: the runner does not build prompts; baselines),
- optional ``endpoint: str | None`` (recorded in run.json, never a key) and ``async def aclose(self)``,
- optional ``prepare(self, questions: list[dict])``: called once before the first request with every question
  being evaluated (the blind ``prior`` baseline learns from the other videos' questions),
- optional ``request_body(request) -> dict``: the chat-completions body that ``ask`` sends (frames as base64
  ``image_url`` parts); a model with it can be run through Batch files (`streamgaze.llm.batch`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from streamgaze.errors import StreamGazeError
from streamgaze.llm.client import RetryableError, image_part, retryable  # noqa: F401  (shared with the openai labeller)
from streamgaze.plugins.manager import get_plugins, registry


@dataclass
class ModelOptions:
    """Options every factory receives (from the ``eval`` command line)."""

    base_url: str | None = None  # the first of ``base_urls``
    seed: int = 0
    max_tokens: int = 16
    timeout_s: float = 60.0
    temperature: float = 0.0
    top_p: float | None = None  # None: not sent (the endpoint's default)
    offline: bool = False  # nothing is sent (Batch files are written or read): no API key needed
    base_urls: tuple[str, ...] = ()  # every ``--base-url``: requests go to the least busy (`streamgaze.llm.fleet`)
    concurrency: int = 8  # the ceiling of requests in flight
    retry_budget_s: float = 600.0  # a request is retried until this much time has passed
    backoff_s: float = 1.0  # the first wait before a retry (then doubled, jittered)
    retries: int | None = None  # at most this many attempts (None: the budget only)

    def endpoints(self) -> tuple[str | None, ...]:
        """The endpoints to send to: ``base_urls``, else ``base_url``, else (None,) for the default one."""
        return self.base_urls or ((self.base_url,) if self.base_url else (None,))


@dataclass
class Request:
    """One question (or one proactive test point) as the model sees it."""

    question_id: str
    point_idx: int  # -1 for multiple choice
    prompt: str
    images: list[bytes] = field(default_factory=list)  # JPEG bytes, in time order
    frame_times: list[float] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # display texts; empty for proactive points
    proactive: bool = False
    task: str = ""
    clip: tuple[float, float] | None = None  # the span of video the request may show (recorded for the audit)
    gaze_until: float | None = None  # the newest gaze sample shown (overlay, salience, scanpath text), if any


@runtime_checkable
class Model(Protocol):
    uses_frames: bool
    uses_prompt: bool

    async def ask(self, request: Request) -> str: ...


def get_model(name: str, options: ModelOptions):
    """Find ``name`` (``random``, ``openai:gpt-4o``, ...) among the registered model factories and build it."""
    entries = registry("models")
    if name in entries:
        return entries[name].obj("", options)
    if ":" in name:
        prefix, spec = name.split(":", 1)
        entry = entries.get(prefix + ":")
        if entry is not None:
            if not spec:
                raise StreamGazeError(f"model {name!r} needs a model name after the colon, e.g. {prefix}:gpt-4o")
            return entry.obj(spec, options)
    def shown(k: str) -> str:
        source = entries[k].source
        origin = "" if source.distribution == "streamgaze" else f" ({source.distribution})"
        return k + ("<model>" if k.endswith(":") else "") + origin

    available = ", ".join(shown(k) for k in entries) or "none"
    raise StreamGazeError(f"unknown model {name!r}; available: {available} (`streamgaze plugins list` shows every plugin){get_plugins().broken_note()}")
