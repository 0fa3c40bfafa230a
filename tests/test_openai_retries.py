"""The one retry loop every OpenAI-compatible caller uses (`streamgaze.llm.client.call_with_retries`): how many
attempts, what is retried, the waits between them, and the one-line failure text."""
from __future__ import annotations

import asyncio

import pytest

from streamgaze.llm import client as openai_client
from streamgaze.llm.client import RetriesExhausted, RetryableError, call_with_retries

KEY = "sk-test-NEVER-WRITE-7f3a9c"


class HTTPError(Exception):
    def __init__(self, status, message="failed", retry_after=None):
        super().__init__(message)
        self.status_code = status
        self.response = type("R", (), {"status_code": status,
                                        "headers": {"retry-after": retry_after} if retry_after else {}})()


@pytest.fixture
def waits(monkeypatch):
    slept = []

    async def sleep(s):
        slept.append(s)

    monkeypatch.setattr(openai_client.asyncio, "sleep", sleep)
    return slept


def failing(*errors, result="ok"):
    """A call that raises ``errors`` in turn, then returns ``result``; ``calls`` counts attempts."""
    calls = []

    async def call():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return call, calls


def test_transient_failures_are_retried_with_exponential_backoff(waits):
    call, calls = failing(HTTPError(503), asyncio.TimeoutError(), ConnectionError(), RetryableError())
    assert asyncio.run(call_with_retries(call, retries=5, backoff_s=0.5)) == "ok"
    assert len(calls) == 5 and waits == [0.5, 1.0, 2.0, 4.0]


def test_attempts_run_out_and_others_fail_at_once(waits):
    call, calls = failing(*[HTTPError(429)] * 9)
    with pytest.raises(RetriesExhausted) as err:
        asyncio.run(call_with_retries(call, retries=3, backoff_s=1))
    assert err.value.attempts == 3 == len(calls) and isinstance(err.value.error, HTTPError)
    call, calls = failing(HTTPError(401), ValueError("never reached"))
    with pytest.raises(RetriesExhausted) as err:
        asyncio.run(call_with_retries(call, retries=5, backoff_s=1))
    assert err.value.attempts == 1 == len(calls) and err.value.error.status_code == 401
    assert err.value.__cause__ is err.value.error


def test_retry_after_and_cap(waits):
    call, _ = failing(HTTPError(429, retry_after="7"), HTTPError(503), HTTPError(503))
    asyncio.run(call_with_retries(call, retries=4, backoff_s=20))
    assert waits == [7.0, 30.0, 30.0]  # the server's Retry-After, then 40 and 80 capped at 30
    waits.clear()
    call, _ = failing(HTTPError(429, retry_after="7"), HTTPError(503), HTTPError(503))
    asyncio.run(call_with_retries(call, retries=4, backoff_s=20, retry_after=False, cap_s=None))
    assert waits == [20, 40, 80]  # the eval's plain exponential backoff


def test_cancellation_is_not_retried(waits):
    async def call():
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(call_with_retries(call, retries=5, backoff_s=1))
    assert waits == []


def test_failure_line_is_redacted_one_line_and_cut(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-1234")
    failed = RetriesExhausted(HTTPError(400, f"bad key {KEY} and sk-env-key-1234\nsecond line"), 2)
    assert failed.line(KEY) == "HTTPError: bad key *** and ***"
    assert failed.line(KEY, status=True) == "HTTPError 400: bad key *** and ***"
    assert failed.line(KEY, limit=12) == "HTTPError: b"
    assert RetriesExhausted(ValueError("\nx"), 1).line() == "ValueError: "
