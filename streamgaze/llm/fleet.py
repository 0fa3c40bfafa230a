"""Many OpenAI-compatible endpoints driven as one: routing, adaptive concurrency and patient retries.

A `Fleet` holds one or more endpoints (``--base-url`` given several times). Every attempt of a request goes to the
open endpoint with the fewest requests outstanding. Each endpoint has its own in-flight limit that adapts the way
TCP does (`AdaptiveLimit`: additive increase, multiplicative decrease on 429 and 503, at most ``ceiling``), honours
the server's ``Retry-After`` (seconds or an HTTP date) and is taken out for a while when it keeps failing (a
circuit breaker: `Endpoint`). A request is retried with jittered exponential backoff until its time budget is
spent (``budget_s``, default 10 minutes), not a fixed number of times; a failure that is not transient (400, 401,
404, ...) is never retried, and connections refused for `UNREACHABLE_S` by a fleet that never answered (a wrong URL,
no server) end the retries early. What each endpoint did is in `Fleet.stats` (written to run.json).
"""
from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from streamgaze.llm.client import RetriesExhausted, redact_url, retryable

T = TypeVar("T")

DEFAULT_RETRY_BUDGET_S = 600.0
OVERLOAD = (429, 503)  # "slow down": lower the endpoint's in-flight limit
MIN_LIMIT = 4  # the in-flight limit never goes below this (or the ceiling): a server refusing requests whatever
# its load (a quota, a warming replica) would otherwise leave one request in flight and the retries' backoff idle
BREAKER_FAILURES = 5  # failures in a row (no success for BREAKER_QUIET_S) that take an endpoint out
BREAKER_QUIET_S = 2.0
BREAKER_COOLDOWN_S = 2.0  # first time out; doubles each time the probe fails, up to BREAKER_MAX_COOLDOWN_S
BREAKER_MAX_COOLDOWN_S = 120.0
BACKOFF_CAP_S = 60.0
WAIT_POLL_S = 1.0  # a request waiting for an endpoint looks again at least this often
UNREACHABLE_S = 20.0  # no endpoint ever answered and connections kept failing this long: a wrong URL or no server,
# not a busy one; the requests give up instead of spending the whole budget


def refused(exc: BaseException) -> bool:
    """A connection that never got an HTTP answer (refused, no route, DNS), as opposed to a timeout."""
    names = {c.__name__ for c in type(exc).__mro__}
    return ("APIConnectionError" in names or isinstance(exc, ConnectionError)) and "APITimeoutError" not in names \
        and not isinstance(exc, TimeoutError)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, if it got one."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def retry_after_s(exc: BaseException, now: datetime | None = None) -> float | None:
    """The server's ``Retry-After`` in seconds from ``now``: a number of seconds or an HTTP date; None without
    one (or an unreadable one)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
    except (AttributeError, TypeError):
        return None
    if value is None:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_s(attempt: int, base_s: float, rng: random.Random, cap_s: float = BACKOFF_CAP_S) -> float:
    """Jittered exponential backoff before retry ``attempt`` (1-based): uniform in [1/2, 1] of
    ``base_s * 2**(attempt-1)`` (at most ``cap_s``), so that requests refused together do not come back together."""
    full = min(cap_s, base_s * (2 ** min(attempt - 1, 30)))
    return full * (0.5 + 0.5 * rng.random())


class AdaptiveLimit:
    """An in-flight limit that grows by one per window of answered requests (additive increase) and halves when
    the server says it is overloaded (multiplicative decrease), within [``floor``, ``ceiling``]. Only a refusal
    of a request sent after the last decrease lowers it again (``epoch``), so a burst of refusals to requests
    sent together counts once, as TCP counts one loss per window."""

    def __init__(self, ceiling: int, *, floor: int | None = None, start: float | None = None, factor: float = 0.5):
        floor = min(MIN_LIMIT, int(ceiling)) if floor is None else int(floor)
        self.ceiling, self.floor, self.factor = int(ceiling), floor, factor
        self.value = float(min(ceiling, start if start is not None else ceiling))
        self.epoch = 0
        self.decreases = 0
        self.lowest = self.value

    @property
    def cap(self) -> int:
        return max(self.floor, int(self.value))

    def on_success(self) -> None:
        self.value = min(float(self.ceiling), self.value + 1.0 / max(self.value, 1.0))

    def on_overload(self, epoch: int, outstanding: int | None = None) -> bool:
        """Halve the limit if the refused request was sent after the last decrease, with at least half the limit
        in flight (``outstanding``, counting it): a refusal at a low load says nothing about how many requests the
        server takes (a server refusing every first attempt would otherwise drive the limit to 1). True if it
        was lowered."""
        if epoch != self.epoch or (outstanding is not None and outstanding < self.value / 2):
            return False
        self.value = max(float(self.floor), self.value * self.factor)
        self.lowest = min(self.lowest, self.value)
        self.epoch += 1
        self.decreases += 1
        return True


class Endpoint:
    """One base URL: its client, its limit, its circuit breaker and its counts."""

    def __init__(self, url: str | None, client: Any, ceiling: int):
        self.url, self.client = url, client
        self.limit = AdaptiveLimit(ceiling)
        self.outstanding = 0
        self.requests = self.answered = self.errors = self.rate_limited = 0
        self.latencies: list[float] = []
        self.failures_in_row = 0
        self.last_success = -float("inf")
        self.open_until = 0.0  # taken out until then (monotonic seconds)
        self.cooldown_s = self.base_cooldown_s = BREAKER_COOLDOWN_S
        self.tripped = False  # the breaker is open or half-open: one probe at a time
        self.times_out = 0
        self.not_before = 0.0  # Retry-After: no request before then

    def free(self, now: float, breaker: bool = True) -> int:
        """How many more requests this endpoint takes now (``breaker`` False: as if it were never taken out)."""
        if now < self.not_before:
            return 0
        if breaker and self.tripped:  # taken out, then half-open: a single probe at a time
            return 1 if now >= self.open_until and self.outstanding == 0 else 0
        return max(0, self.limit.cap - self.outstanding)

    def wakes_at(self, now: float, breaker: bool = True) -> float | None:
        t = max(self.open_until if breaker else 0.0, self.not_before)
        return t if t > now else None

    def succeeded(self, now: float, latency_s: float) -> None:
        self.answered += 1
        self.latencies.append(latency_s)
        self.failures_in_row = 0
        self.last_success = now
        self.limit.on_success()
        if self.tripped:
            self.tripped, self.cooldown_s = False, self.base_cooldown_s

    def failed(self, now: float) -> None:
        """A failure that says the endpoint may be down (no answer, a timeout, a 5xx): count it, and take the
        endpoint out when it keeps failing (a failed probe takes it out again, for twice as long)."""
        self.failures_in_row += 1
        if self.tripped:
            self.cooldown_s = min(BREAKER_MAX_COOLDOWN_S, self.cooldown_s * 2)
            self.open_until = now + self.cooldown_s
            self.times_out += 1
        elif self.failures_in_row >= BREAKER_FAILURES and now - self.last_success > BREAKER_QUIET_S:
            self.tripped = True
            self.open_until = now + self.cooldown_s
            self.times_out += 1

    def stats(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, max(0, int(round(p * (len(lat) - 1)))))], 4)

        return {
            "url": redact_url(self.url), "requests": self.requests, "answered": self.answered,
            "errors": self.errors, "rate_limited": self.rate_limited,
            "latency_s": {"mean": round(sum(lat) / len(lat), 4) if lat else None, "p50": pct(0.5), "p95": pct(0.95)},
            "limit": {"final": round(self.limit.value, 2), "lowest": round(self.limit.lowest, 2),
                      "decreases": self.limit.decreases},
            "taken_out": self.times_out,
        }


@dataclass
class CallInfo:
    """Filled by `Fleet.call` for the caller that set it in `CALL_INFO`: the attempts made and the latency of the
    last one (a model's ``ask`` returns text only, so the runner learns these this way)."""

    attempts: int = 0
    latency_s: float = 0.0
    endpoint: str | None = None


CALL_INFO: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("streamgaze_call_info", default=None)


class BudgetSpent(Exception):
    """The retry budget ran out while waiting for an endpoint to take the request."""


class Fleet:
    """Endpoints driven as one. ``make_client(url)`` builds each endpoint's client (``url`` None for a single
    anonymous endpoint, e.g. a model that is not an HTTP client); `call` sends one request with routing, limits
    and retries. ``ceiling`` bounds the requests in flight over all endpoints and each endpoint's limit;
    ``max_attempts`` (None: the budget only) caps the attempts of one request."""

    def __init__(self, urls: Sequence[str | None], make_client: Callable[[str | None], Any], *, ceiling: int = 8,
                 budget_s: float = DEFAULT_RETRY_BUDGET_S, backoff_s: float = 1.0, max_attempts: int | None = None,
                 attempt_timeout_s: float | None = None, seed: int | None = None,
                 breaker_cooldown_s: float = BREAKER_COOLDOWN_S):
        urls = list(urls) or [None]
        self.endpoints = [Endpoint(u, make_client(u), ceiling) for u in urls]
        for e in self.endpoints:
            e.cooldown_s = e.base_cooldown_s = breaker_cooldown_s
        self.ceiling = int(ceiling)
        self.budget_s, self.backoff_s, self.max_attempts = float(budget_s), float(backoff_s), max_attempts
        self.attempt_timeout_s = attempt_timeout_s
        self.in_flight = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._rng = random.Random(seed)
        self._refused_since: float | None = None  # first refused connection while no endpoint has answered

    @property
    def urls(self) -> list[str | None]:
        return [e.url for e in self.endpoints]

    # -- routing -----------------------------------------------------------------------------------------
    def _breaker(self) -> bool:
        """Whether the circuit breakers steer: only while some endpoint is not taken out (with every endpoint out,
        or a single one, there is nowhere else to go: the backoff alone paces the retries)."""
        return not all(e.tripped for e in self.endpoints)

    def _pick(self, now: float) -> Endpoint | None:
        if self.in_flight >= self.ceiling:
            return None
        best = None
        breaker = self._breaker()
        for e in self.endpoints:
            if e.free(now, breaker) > 0 and (best is None or (e.outstanding, e.requests) < (best.outstanding, best.requests)):
                best = e
        return best

    async def _acquire(self, deadline: float) -> Endpoint:
        while True:
            now = time.monotonic()
            e = self._pick(now)
            if e is not None:
                e.outstanding += 1
                self.in_flight += 1
                return e
            if now >= deadline:
                raise BudgetSpent
            breaker = self._breaker()
            wakes = [t for x in self.endpoints if (t := x.wakes_at(now, breaker)) is not None]
            timeout = min([deadline, now + WAIT_POLL_S, *wakes]) - now
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, timeout=max(0.001, timeout))
            except asyncio.TimeoutError:
                pass
            finally:
                if not fut.done():
                    fut.cancel()
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass

    def _release(self, e: Endpoint, *, changed: bool = False) -> None:
        """Give back ``e``'s place; ``changed``: the endpoint was taken out or paused, so every waiting request
        looks again (and learns when to)."""
        e.outstanding -= 1
        self.in_flight -= 1
        if changed:
            while self._waiters:
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_result(None)
            return
        self._wake()

    def _wake(self) -> None:
        """Wake as many waiting requests as there are free places now."""
        now = time.monotonic()
        breaker = self._breaker()
        room = min(self.ceiling - self.in_flight, sum(e.free(now, breaker) for e in self.endpoints))
        while room > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1

    # -- one request -------------------------------------------------------------------------------------
    async def call(self, fn: Callable[[Any], Awaitable[T]], *, budget_s: float | None = None) -> T:
        """``await fn(client)`` on the best endpoint, retried until it succeeds, fails for good or the budget is
        spent; then `RetriesExhausted` holding the last failure."""
        info = CALL_INFO.get()
        start = time.monotonic()
        deadline = start + (self.budget_s if budget_s is None else budget_s)
        attempt = 0
        last: Exception | None = None
        while True:
            try:
                e = await self._acquire(deadline)
            except BudgetSpent:
                err = last or TimeoutError(f"retry budget of {deadline - start:g} s spent waiting for an endpoint")
                raise RetriesExhausted(err, attempt) from err
            attempt += 1
            epoch, load = e.limit.epoch, e.outstanding
            e.requests += 1
            t0 = time.monotonic()
            try:
                if self.attempt_timeout_s is not None:
                    result = await asyncio.wait_for(fn(e.client), timeout=self.attempt_timeout_s)
                else:
                    result = await fn(e.client)
            except asyncio.CancelledError:
                self._release(e)
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                now = time.monotonic()
                if info is not None:
                    info.attempts, info.latency_s, info.endpoint = attempt, now - t0, e.url
                status = status_of(exc)
                if status == 429:
                    e.rate_limited += 1
                else:
                    e.errors += 1
                if status in OVERLOAD:
                    e.limit.on_overload(epoch, load)
                wait_after = retry_after_s(exc)
                before = (e.not_before, e.open_until)
                if wait_after is not None and retryable(exc):
                    e.not_before = max(e.not_before, now + wait_after)
                if status is None or status >= 500 and status != 429:
                    if retryable(exc):
                        e.failed(now)
                self._release(e, changed=(e.not_before, e.open_until) != before)
                last = exc
                if not retryable(exc) or (self.max_attempts is not None and attempt >= self.max_attempts):
                    raise RetriesExhausted(exc, attempt) from exc
                if self._unreachable(exc, now):
                    raise RetriesExhausted(exc, attempt) from exc
                delay = max(backoff_s(attempt, self.backoff_s, self._rng), wait_after or 0.0)
                if now + delay >= deadline:
                    raise RetriesExhausted(exc, attempt) from exc
                await asyncio.sleep(delay)
                continue
            now = time.monotonic()
            e.succeeded(now, now - t0)
            if info is not None:
                info.attempts, info.latency_s, info.endpoint = attempt, now - t0, e.url
            self._release(e)
            return result

    def _unreachable(self, exc: BaseException, now: float) -> bool:
        """True once connections have been refused for `UNREACHABLE_S` and no endpoint has ever answered."""
        if not refused(exc) or any(e.answered for e in self.endpoints):
            return False
        if self._refused_since is None:
            self._refused_since = now
        return now - self._refused_since >= UNREACHABLE_S

    def stats(self) -> list[dict]:
        return [e.stats() for e in self.endpoints]

    async def aclose(self) -> None:
        for e in self.endpoints:
            close = getattr(e.client, "close", None)
            if close is not None:
                res = close()
                if asyncio.iscoroutine(res):
                    await res


def openai_fleet(api_key: str, urls: Sequence[str | None], timeout_s: float, **kw) -> Fleet:
    """A `Fleet` of ``AsyncOpenAI`` clients (the SDK's own retries off), one per URL (None: the default endpoint).
    Each attempt is cut at 1.5 x ``timeout_s`` + 1 s even if the SDK's own timeout does not fire."""
    from streamgaze.llm.client import make_client

    kw.setdefault("attempt_timeout_s", timeout_s * 1.5 + 1)
    return Fleet(list(urls) or [None], lambda url: make_client(api_key, url, timeout_s), **kw)
