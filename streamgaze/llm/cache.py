"""Cached text generation through an OpenAI-compatible chat-completions endpoint, for the optional LLM steps of
generation (FAP's label rewording, tasks.md 2.8; OAR's attributes from captions, tasks.md 2.7).

Generation must stay reproducible, so every call is greedy (temperature 0) and cached: first in a small
in-process dict, then on disk, one JSON file per request keyed by the sha256 of (model, system, prompt, and
whether a JSON object was requested). The first answer written for a key wins (written beside, then hard-linked
into place), and every caller returns what the file holds, so reruns and concurrent worker processes give
identical text once a key is cached.
Cache files hold the model, the prompts, the reply format (when JSON) and the text: never the API key or
the base URL.

Configuration: explicit arguments, else ``STREAMGAZE_LLM_BASE_URL``, ``STREAMGAZE_LLM_MODEL``,
``OPENAI_API_KEY`` (through `streamgaze.llm.client.resolve_api_key`) and ``STREAMGAZE_LLM_CACHE`` (default
``$XDG_CACHE_HOME/streamgaze/llm`` or ``~/.cache/streamgaze/llm``). Generation is synchronous, so
`CachedLLM.complete` is a blocking call around the async client of `streamgaze.llm.client`;
`CachedLLM.complete_many` sends the uncached ones of many prompts concurrently.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from streamgaze.errors import StreamGazeError
from streamgaze.llm.client import (
    DEFAULT_ENDPOINT,
    RetriesExhausted,
    call_with_retries,
    make_client,
    redact,
    redact_url,
    resolve_api_key,
    url_secrets,
)

ENV_BASE_URL = "STREAMGAZE_LLM_BASE_URL"
ENV_MODEL = "STREAMGAZE_LLM_MODEL"
ENV_CACHE = "STREAMGAZE_LLM_CACHE"

#: The in-process cache: (cache folder, key) -> text. Small values; bounded by the labels of a run.
_MEMORY: dict[tuple[str, str], str] = {}
_MEMORY_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamgaze" / "llm"


def resolve_model(model: str | None) -> str | None:
    return model or os.environ.get(ENV_MODEL) or None


def resolve_base_url(base_url: str | None) -> str | None:
    return base_url or os.environ.get(ENV_BASE_URL) or None


def cache_key(model: str, prompt: str, system: str | None = None, json_object: bool = False) -> str:
    """sha256 (hex) of the request's model, prompts and (only when set) the JSON-object reply format: what the
    cached text depends on. Keys of plain-text requests are those of earlier versions."""
    parts = [model, system, prompt] + (["json_object"] if json_object else [])
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CachedLLM:
    """Greedy, cached completions from one model. ``requests`` counts calls that reached the server."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    cache_dir: Path | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_s: float = 1.0
    max_tokens: int = 64
    requests: int = 0
    hits: int = 0

    def __post_init__(self):
        self.base_url = resolve_base_url(self.base_url)
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @classmethod
    def from_settings(cls, model=None, base_url=None, api_key=None, cache_dir=None, what="the LLM step", **kw):
        """Explicit settings, else the environment; a one-line error when no model is named."""
        resolved = resolve_model(model)
        if not resolved:
            raise StreamGazeError(f"{what} needs a model: set it in the spec's params or {ENV_MODEL}")
        base = resolve_base_url(base_url)
        return cls(resolved, base, resolve_api_key(api_key, base, what), cache_dir, **kw)

    # -- cache -------------------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def cached(self, prompt: str, system: str | None = None, json_object: bool = False) -> str | None:
        """The cached text of a request, or None (never calls the server)."""
        key = cache_key(self.model, prompt, system, json_object)
        mem = (str(self.cache_dir), key)
        with _MEMORY_LOCK:
            if mem in _MEMORY:
                return _MEMORY[mem]
        path = self._path(key)
        try:
            text = json.loads(path.read_text(encoding="utf-8"))["text"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StreamGazeError(f"{path}: unreadable LLM cache file ({exc}); delete it to ask again") from exc
        with _MEMORY_LOCK:
            _MEMORY[mem] = text
        return text

    def _store(self, prompt: str, system: str | None, text: str, json_object: bool = False) -> str:
        """Write the answer unless another process was first; return the text the cache holds."""
        key = cache_key(self.model, prompt, system, json_object)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"model": self.model, "system": system, "prompt": prompt, "text": text}
        if json_object:
            record["response_format"] = "json_object"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record, fh, ensure_ascii=False, indent=1)
                fh.write("\n")
            try:
                os.link(tmp, path)  # atomic, and fails if a concurrent writer got there first
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        with _MEMORY_LOCK:
            _MEMORY.pop((str(self.cache_dir), key), None)
        return self.cached(prompt, system, json_object)

    # -- calls -------------------------------------------------------------------------------------------
    def complete(self, prompt: str, system: str | None = None, *, json_object: bool = False) -> str:
        """The model's greedy answer to ``prompt`` (stripped), from the cache when it holds it. ``json_object``
        asks for a JSON object (``response_format``); the text is returned as sent, for the caller to parse."""
        text = self.cached(prompt, system, json_object)
        if text is not None:
            self.hits += 1
            return text
        return _run_sync(self._ask_all([prompt], system, json_object, 1))[0]

    def complete_many(self, prompts, system: str | None = None, *, json_object: bool = False,
                      concurrency: int = 4) -> list[str]:
        """`complete` for each prompt, in order; the uncached ones (each once) are sent ``concurrency`` at a time.
        The first failure raises (answers that arrived before it stay cached)."""
        prompts = list(prompts)
        todo = sorted({p for p in prompts if self.cached(p, system, json_object) is None})
        if todo:
            _run_sync(self._ask_all(todo, system, json_object, concurrency))
        return [self.complete(p, system, json_object=json_object) for p in prompts]

    async def _ask_all(self, prompts: list[str], system: str | None, json_object: bool, concurrency: int) -> list[str]:
        """Ask for every prompt (one client, at most ``concurrency`` requests out) and cache each answer."""
        client = make_client(self.api_key or "unused", self.base_url, self.timeout_s)
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(prompt: str) -> str:
            async with sem:
                text = await self._request(client, prompt, system, json_object)
            return self._store(prompt, system, text, json_object)

        tasks = [asyncio.ensure_future(one(p)) for p in prompts]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:  # the first failure ends the batch
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            await client.close()

    async def _request(self, client, prompt: str, system: str | None, json_object: bool = False) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        extra = {"response_format": {"type": "json_object"}} if json_object else {}

        async def attempt() -> str:
            self.requests += 1
            resp = await client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, max_tokens=self.max_tokens, **extra
            )
            content = resp.choices[0].message.content if resp.choices else None
            return (content or "").strip()

        try:
            return await call_with_retries(attempt, retries=self.max_attempts, backoff_s=self.backoff_s)
        except RetriesExhausted as failed:
            where = redact(redact_url(self.base_url or DEFAULT_ENDPOINT), self.api_key)
            raise StreamGazeError(
                f"LLM request to model {self.model!r} at {where} failed after {failed.attempts} attempt(s): "
                f"{failed.line(self.api_key, *url_secrets(self.base_url))}"
            ) from None


def _run_sync(coro):
    """Run a coroutine to completion from synchronous code, also when the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- optional LLM steps of task specs (FAP rewording, OAR attributes from captions) --------------------------------

def check_step_model(switch: str, on: bool, model: str | None, model_param: str) -> None:
    """A switched-on step needs a model: its ``model_param`` or ``STREAMGAZE_LLM_MODEL``. Raised as ValueError
    inside a params validator, so the spec loader reports it as one line naming the field."""
    if on and not resolve_model(model):
        raise ValueError(f"{switch} needs a model: set {model_param} or {ENV_MODEL}")


def drop_step_params(data: dict, on: bool, fields) -> dict:
    """A step's params leave the dumped params (and so the generation report) while it is off, so default output
    does not depend on them."""
    if not on:
        for name in fields:
            data.pop(name, None)
    return data


@lru_cache(maxsize=8)
def step_llm(what: str, model, base_url, api_key, cache_dir, max_tokens: int = 64) -> CachedLLM:
    """One `CachedLLM` per process and step setting."""
    return CachedLLM.from_settings(model, base_url, api_key, cache_dir, what=what, max_tokens=max_tokens)
