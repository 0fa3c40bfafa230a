"""What every OpenAI-compatible caller shares (the eval's model adapters, the ``openai`` object labeller and the
cached LLM of generation's optional steps): which failures are transient (`retryable`), the backoff between
attempts, the retry loop itself (`call_with_retries`), how a JPEG becomes an ``image_url`` part, how the API key is
found (and kept out of every message we write), and the client itself.

The key comes from an explicit argument or ``OPENAI_API_KEY``; a local server (``base_url`` given) may need none.
Nothing here writes the key anywhere; `redact` removes it from error texts before they are stored or printed.
"""
from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import threading
from collections import OrderedDict
from typing import Awaitable, Callable, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from streamgaze.errors import StreamGazeError

DEFAULT_ENDPOINT = "https://api.openai.com/v1"

T = TypeVar("T")


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


class RetriesExhausted(Exception):
    """Raised by `call_with_retries` when the last attempt failed: ``error`` is that attempt's exception (not
    retryable, or the attempts ran out), ``attempts`` how many attempts were made."""

    def __init__(self, error: Exception, attempts: int):
        super().__init__(f"{type(error).__name__}: {error}")
        self.error, self.attempts = error, attempts

    def line(self, *keys: str | None, status: bool = False, limit: int | None = None) -> str:
        """The failure as one line for a log or an error row: ``Type[ status]: message``, every given key (and
        ``OPENAI_API_KEY``) replaced by ``***``, then cut at the first line break and at ``limit`` characters."""
        code = getattr(self.error, "status_code", None) if status else None
        text = f"{type(self.error).__name__}{f' {code}' if code else ''}: {self.error}"
        text = (redact(text, *keys).splitlines() or [""])[0]
        return text[:limit] if limit is not None else text


async def call_with_retries(
    make_call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff_s: float,
    retry_after: bool = True,
    cap_s: float | None = 30.0,
) -> T:
    """``await make_call()`` up to ``retries`` times in all; return the first result.

    A failure that is `retryable` (and not the last attempt) is followed by a wait of `backoff_delay`:
    ``backoff_s * 2**(attempt-1)``, or the server's ``Retry-After`` when ``retry_after``; at most ``cap_s``
    (None: no cap). Any other failure, or the last one, raises `RetriesExhausted` holding it. ``make_call`` is
    called once per attempt, so it can count requests, time them, take a semaphore or set its own timeout.
    Cancellation is never retried.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await make_call()
        except Exception as exc:  # noqa: BLE001 - classified by `retryable`
            if attempt < retries and retryable(exc):
                await asyncio.sleep(backoff_delay(attempt, backoff_s, exc if retry_after else None,
                                                  math.inf if cap_s is None else cap_s))
                continue
            raise RetriesExhausted(exc, attempt) from exc


def image_part(jpeg: bytes) -> dict:
    """A chat-completions ``image_url`` content part holding a base64 JPEG."""
    return {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}}


IMAGE_PART_CACHE = 4096  # JSON image parts kept (a frame is sent by many requests: questions share clips)
_image_parts: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
_image_parts_lock = threading.Lock()


def image_part_json(jpeg: bytes) -> bytes:
    """`image_part` as JSON text, made once per JPEG: base64 and JSON-encoding the frames were a third of a
    request's CPU when every request re-encoded them (bench/bench_client.py). Keyed by the bytes' hash, which
    Python keeps with the object, and checked by equality."""
    key = hash(jpeg)
    with _image_parts_lock:
        hit = _image_parts.get(key)
        if hit is not None and (hit[0] is jpeg or hit[0] == jpeg):
            _image_parts.move_to_end(key)
            return hit[1]
    # base64 text needs no JSON escaping
    part = b'{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,' + base64.b64encode(jpeg) + b'"}}'
    with _image_parts_lock:
        _image_parts[key] = (jpeg, part)
        while len(_image_parts) > IMAGE_PART_CACHE:
            _image_parts.popitem(last=False)
    return part


def chat_json(fields: dict, images: list[bytes], text: str) -> bytes:
    """The JSON body of a chat completion with one user message: ``images`` as image parts (`image_part`), then
    ``text``, and the other ``fields`` (model, temperature, ...). Equal, as JSON, to the body built from dicts; sent as it
    is (`post_chat`), so the frames are neither re-encoded nor walked by the SDK."""
    parts = [image_part_json(j) for j in images]
    parts.append(json.dumps({"type": "text", "text": text}, separators=(",", ":")).encode())
    head = json.dumps(fields, separators=(",", ":")).encode()
    message = b'[{"role":"user","content":[' + b",".join(parts) + b"]}]"
    return (head[:-1] + (b"," if len(head) > 2 else b"") + b'"messages":' + message + b"}")


async def post_chat(client, body: bytes):
    """POST a ready JSON body (`chat_json`) to ``/chat/completions`` through the openai ``client`` (its
    errors, status codes and ``Retry-After`` as for ``chat.completions.create``); the parsed ChatCompletion."""
    from openai.types.chat import ChatCompletion

    return await client.post("/chat/completions", cast_to=ChatCompletion, content=body,
                             options={"headers": {"Content-Type": "application/json"}})


def resolve_api_key(api_key: str | None, base_url: str | None, what: str = "this model") -> str:
    """The explicit key, else ``OPENAI_API_KEY``; a local endpoint (``base_url``) without a key gets a dummy."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if not base_url:
            raise StreamGazeError(f"{what} needs OPENAI_API_KEY in the environment (or a key flag), or --base-url")
        key = "unused"  # a local endpoint that wants no key
    return key


#: query parameters whose values are secrets: ``api-key``, ``api_key``, ``key``, ``token``, ``access_token``,
#: ``secret``, ``client_secret``, ``password``, ``sig``, ``auth`` ...
SECRET_PARAM = re.compile(r"(key|token|secret|passw(or)?d|pwd|auth|sig(nature)?|credential)", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&#\s?;]+)=(?P<value>[^&#\s;]*)")


def redact_url(url: str | None) -> str | None:
    """``url`` as it may be written or printed: user info (``user:key@``) becomes ``***@`` and the value of every
    query parameter named like a secret (`SECRET_PARAM`: ``api-key``, ``key``, ``token``, ``access_token``,
    ``password`` ...) becomes ``***``. Requests keep using the real URL; only what is recorded is redacted."""
    if url is None:
        return None
    url = str(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return _scrub_urls(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='-_.~')}={'***' if SECRET_PARAM.search(k) else quote(v, safe='-_.~/:,')}"
                         for k, v in pairs)
    return _scrub_urls(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def url_secrets(url: str | None) -> list[str]:
    """The secret parts written into ``url`` (user, password, secret query values), for `redact`'s ``keys``."""
    if not url:
        return []
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    user, password = parts.username, parts.password
    out = [password, user if (password is None or len(user or "") >= 8) else None]
    out += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if SECRET_PARAM.search(k)]
    return [s for s in out if s]


def _scrub_urls(text: str) -> str:
    """Any URL inside free text with its user info and secret query values replaced by ``***``."""
    text = _USERINFO.sub(lambda m: m["scheme"] + "***@", text)
    return _QUERY_PARAM.sub(
        lambda m: f"{m['lead']}{m['name']}={'***' if SECRET_PARAM.search(m['name']) else m['value']}", text)


def redact(text: str, *keys: str | None) -> str:
    """``text`` with every given key (and ``OPENAI_API_KEY``) replaced by ``***``, and the user info and secret
    query values of any URL in it too (`redact_url`)."""
    for k in (*keys, os.environ.get("OPENAI_API_KEY")):
        if k and k != "unused" and len(k) >= 4:
            text = text.replace(k, "***")
    return _scrub_urls(text)


def make_client(api_key: str, base_url: str | None, timeout_s: float):
    """An ``AsyncOpenAI`` client with the SDK's own retries off (callers retry with `call_with_retries`)."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)
