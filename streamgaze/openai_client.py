"""What every OpenAI-compatible caller shares (the eval's ``openai:<model>`` and the ``openai`` object labeller):
which failures are transient (`retryable`), the backoff between attempts, how a JPEG becomes an ``image_url``
part, how the API key is found (and kept out of every message we write), and the client itself.

The key comes from an explicit argument or ``OPENAI_API_KEY``; a local server (``base_url`` given) may need none.
Nothing here writes the key anywhere; `redact` removes it from error texts before they are stored or printed.
"""
from __future__ import annotations

import asyncio
import base64
import os

from .errors import StreamGazeError

DEFAULT_ENDPOINT = "https://api.openai.com/v1"


class RetryableError(Exception):
    """Raise for a transient failure the caller should retry (rate limit, overload)."""


def retryable(exc: BaseException) -> bool:
    """429, 408, 5xx, timeouts and dropped connections are retried; anything else fails at once."""
    if isinstance(exc, (RetryableError, asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in (408, 409, 429) or status >= 500
    name = type(exc).__name__
    return "Timeout" in name or "Connection" in name


def backoff_delay(attempt: int, backoff_s: float, exc: BaseException | None = None, cap_s: float = 30.0) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``backoff_s * 2**(attempt-1)``, or the server's
    ``Retry-After`` (seconds) when it sends one; at most ``cap_s``."""
    delay = backoff_s * (2 ** max(0, attempt - 1))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None:
        try:
            after = headers.get("retry-after")
            if after is not None:
                delay = float(after)
        except (TypeError, ValueError):
            pass
    return max(0.0, min(delay, cap_s))


def image_part(jpeg: bytes) -> dict:
    """A chat-completions ``image_url`` content part holding a base64 JPEG."""
    return {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}}


def resolve_api_key(api_key: str | None, base_url: str | None, what: str = "this model") -> str:
    """The explicit key, else ``OPENAI_API_KEY``; a local endpoint (``base_url``) without a key gets a dummy."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if not base_url:
            raise StreamGazeError(f"{what} needs OPENAI_API_KEY in the environment (or a key flag), or --base-url")
        key = "unused"  # a local endpoint that wants no key
    return key


def redact(text: str, *keys: str | None) -> str:
    """``text`` with every given key (and ``OPENAI_API_KEY``) replaced by ``***``."""
    for k in (*keys, os.environ.get("OPENAI_API_KEY")):
        if k and k != "unused" and len(k) >= 4:
            text = text.replace(k, "***")
    return text


def make_client(api_key: str, base_url: str | None, timeout_s: float):
    """An ``AsyncOpenAI`` client with the SDK's own retries off (callers retry with `backoff_delay`)."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)
