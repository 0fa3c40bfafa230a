"""Many endpoints, adaptive concurrency and patient retries (`streamgaze.llm.fleet`), through real HTTP to loopback
OpenAI-compatible servers (bench/fake_chat_server.py): least-outstanding routing, the circuit breaker, AIMD on
429, Retry-After, non-transient errors, and the retry budget of `streamgaze eval`."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.runner import run_eval
from streamgaze.llm.client import RetriesExhausted
from streamgaze.llm.fleet import AdaptiveLimit, openai_fleet, retry_after_s

_spec = importlib.util.spec_from_file_location(
    "fake_chat_server", Path(__file__).resolve().parents[1] / "bench" / "fake_chat_server.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)
Server = fake.SlowChatServer


def write_questions(qa: Path, n: int) -> Path:
    qa.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"id": f"q{i}", "task": "past_scene_recall", "video_id": "v", "question": f"question {i}?",
                        "options": ["a", "b", "c", "d"], "answer": "A", "clip": [0.0, 1.0]}) for i in range(n)]
    (qa / "past_scene_recall.jsonl").write_text("\n".join(rows) + "\n")
    return qa


def outcomes(run: Path) -> list[str]:
    return [json.loads(x)["outcome"] for x in (run / "predictions.jsonl").read_text().splitlines()]


def send(fleet, n: int, concurrency: int | None = None) -> list:
    """``n`` chat requests through ``fleet`` (each a distinct body), ``concurrency`` at a time (None: all at once)."""

    async def one(i):
        return await fleet.call(lambda client: client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"request {i}"}], max_tokens=1))

    async def main():
        sem = asyncio.Semaphore(concurrency or n)

        async def gated(i):
            async with sem:
                try:
                    return await one(i)
                except RetriesExhausted as exc:
                    return exc

        try:
            return await asyncio.gather(*(gated(i) for i in range(n)))
        finally:
            await fleet.aclose()

    return asyncio.run(main())


def test_eval_spreads_requests_over_endpoints_by_outstanding_requests(tmp_path):
    """Two endpoints, one ten times slower: the fast one has fewer requests outstanding and gets most of them;
    with equal latency they split about evenly. run.json has per-endpoint counts and latency."""
    qa = write_questions(tmp_path / "qa", 60)
    with Server("A", 0.25) as slow, Server("A", 0.025) as quick:
        run_eval(qa, EvalConfig("text-only:m", tmp_path / "R", base_url=[slow.url, quick.url], concurrency=6))
        assert slow.count + quick.count == 60 and quick.count > 2 * slow.count > 0
    assert outcomes(tmp_path / "R") == ["correct"] * 60
    eps = json.loads((tmp_path / "R" / "run.json").read_text())["endpoints"]
    assert [e["url"] for e in eps] == [slow.url, quick.url]
    assert sum(e["requests"] for e in eps) == 60 == sum(e["answered"] for e in eps)
    assert all(e["errors"] == 0 == e["rate_limited"] for e in eps)
    assert eps[0]["latency_s"]["p50"] > 0.2 > eps[1]["latency_s"]["p95"] > 0
    assert eps[1]["latency_s"]["p50"] <= eps[1]["latency_s"]["p95"]
    with Server("A", 0.05) as a, Server("A", 0.05) as b:
        run_eval(qa, EvalConfig("text-only:m", tmp_path / "R2", base_url=[a.url, b.url], concurrency=6))
        assert a.count + b.count == 60 and abs(a.count - b.count) <= 8


def test_an_endpoint_that_keeps_failing_is_taken_out_and_tried_again_later():
    with Server("A", 0.01) as bad, Server("A", 0.01) as good:
        bad.down = True
        fleet = openai_fleet("unused", [bad.url, good.url], 5.0, ceiling=4, backoff_s=0.01, breaker_cooldown_s=0.5)
        replies = send(fleet, 40, concurrency=2)
        assert all(not isinstance(r, Exception) for r in replies)  # every failure at `bad` was answered by `good`
        ep_bad = fleet.endpoints[0]
        assert ep_bad.tripped and ep_bad.times_out >= 1 and ep_bad.answered == 0
        assert 5 <= bad.count < 15 and good.count == 40  # taken out after 5 failures, then only probes
        bad.down = False
        time.sleep(ep_bad.cooldown_s + 0.1)
        fleet2_before = bad.count
        replies = send_more(fleet, 40)
        assert all(not isinstance(r, Exception) for r in replies)
        assert not ep_bad.tripped and bad.count - fleet2_before >= 10  # the probe succeeded: back in the rotation
        stats = fleet.stats()
        assert stats[0]["taken_out"] >= 1 and stats[0]["errors"] == bad.statuses[500]


def send_more(fleet, n: int) -> list:
    """`send` on a fleet whose clients were closed: reopen them first."""
    from streamgaze.llm.client import make_client

    for e in fleet.endpoints:
        e.client = make_client("unused", e.url, 5.0)
    return send(fleet, n, concurrency=4)


def test_429_lowers_the_in_flight_limit_and_every_request_is_answered():
    """A server taking 4 requests in flight (429 above), driven with a ceiling of 32: every request answered,
    at most one 429 for two answers, and the limit came down."""
    with Server("A", 0.05, capacity=4) as srv:
        fleet = openai_fleet("unused", [srv.url], 5.0, ceiling=32, backoff_s=0.02)
        replies = send(fleet, 160)
        assert all(not isinstance(r, Exception) for r in replies)
        assert srv.statuses[200] == 160 and srv.statuses.get(429, 0) <= 80
        limit = fleet.endpoints[0].limit
        assert limit.decreases >= 2 and limit.lowest <= 8
        assert fleet.stats()[0]["rate_limited"] == srv.statuses.get(429, 0)


def test_additive_increase_multiplicative_decrease_once_per_window():
    limit = AdaptiveLimit(64)
    epoch = limit.epoch
    assert not limit.on_overload(epoch, outstanding=20)  # refused at a low load: not a capacity signal
    assert limit.on_overload(epoch, outstanding=40) and limit.value == 32
    assert not limit.on_overload(epoch)  # a refusal of a request sent before the decrease: counted once
    assert limit.on_overload(limit.epoch) and limit.value == 16
    for _ in range(16):
        limit.on_success()
    assert 16.9 < limit.value < 17.1  # one more per window of answered requests
    for _ in range(20):
        limit.on_overload(limit.epoch)
    assert limit.cap == 4 and limit.lowest == 4.0  # the floor
    assert AdaptiveLimit(2).floor == 2 and AdaptiveLimit(64, floor=1).floor == 1
    for _ in range(10_000):
        limit.on_success()
    assert limit.value == 64  # never above the ceiling


def test_retry_after_is_honoured_in_seconds_and_as_a_date():
    with Server("A", 0.0, script=[429], retry_after="1") as srv:
        fleet = openai_fleet("unused", [srv.url], 5.0, ceiling=2, backoff_s=0.01)
        (reply,) = send(fleet, 1)
        assert not isinstance(reply, Exception)
        (t0, s0), (t1, s1) = srv.times
        assert (s0, s1) == (429, 200) and t1 - t0 >= 0.95

    class Exc(Exception):
        def __init__(self, value):
            self.response = type("R", (), {"status_code": 429, "headers": {"retry-after": value}})()

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert retry_after_s(Exc(format_datetime(now + timedelta(seconds=7), usegmt=True)), now) == 7.0
    assert retry_after_s(Exc(format_datetime(now - timedelta(seconds=7), usegmt=True)), now) == 0.0
    assert retry_after_s(Exc("12"), now) == 12.0 and retry_after_s(Exc("soon"), now) is None
    assert retry_after_s(Exc("nan"), now) is None and retry_after_s(ValueError(), now) is None


@pytest.mark.parametrize("status", [400, 401, 404])
def test_non_transient_errors_are_not_retried(status):
    with Server("A", 0.0, script=[status]) as srv:
        fleet = openai_fleet("unused", [srv.url], 5.0, ceiling=2, backoff_s=0.01)
        (reply,) = send(fleet, 1)
        assert isinstance(reply, RetriesExhausted) and reply.attempts == 1 and srv.count == 1
        assert reply.error.status_code == status


def test_429_429_429_500_then_200_completes_in_one_run(tmp_path):
    qa = write_questions(tmp_path / "qa", 24)
    with Server("A", 0.01, script=[429, 429, 429, 500]) as srv:
        run_eval(qa, EvalConfig("text-only:m", tmp_path / "R", base_url=srv.url, concurrency=8, backoff_s=0.01))
        assert srv.statuses == {429: 72, 500: 24, 200: 24}
    assert outcomes(tmp_path / "R") == ["correct"] * 24


def test_spent_retry_budget_is_an_error_row_and_exit_code_1(tmp_path):
    qa = write_questions(tmp_path / "qa", 3)
    with Server("A", 0.0, script=[503] * 10_000) as srv:
        t0 = time.perf_counter()
        res = CliRunner().invoke(cli, ["eval", "--qa", str(qa), "--model", "text-only:m", "--base-url", srv.url,
                                       "--out", str(tmp_path / "R"), "--retry-budget", "1"])
        assert time.perf_counter() - t0 < 10
        assert srv.count > 3  # retried (backoff 0.5-1 s, then 1-2 s), not given up at once
    assert res.exit_code == 1, res.output
    assert "3 of 3 requests failed" in res.output and "503" in res.output
    assert outcomes(tmp_path / "R") == ["error"] * 3
    eps = json.loads((tmp_path / "R" / "run.json").read_text())["endpoints"]
    assert eps[0]["errors"] == srv.count and eps[0]["answered"] == 0


def test_refused_connections_end_early_only_while_nothing_answered(monkeypatch):
    """A wrong URL (every connection refused, nothing ever answered) gives up after UNREACHABLE_S, not after the
    whole budget; once an endpoint has answered, refusals are retried to the budget (a restarting server)."""
    import asyncio
    import time

    from streamgaze.llm import fleet as fleet_mod
    from streamgaze.llm.client import RetriesExhausted

    monkeypatch.setattr(fleet_mod, "UNREACHABLE_S", 0.3)
    calls = {"n": 0}

    async def refuse(client):
        calls["n"] += 1
        raise ConnectionRefusedError("refused")

    async def ok(client):
        return "fine"

    fl = fleet_mod.Fleet(["http://a/v1"], lambda url: None, budget_s=60.0, backoff_s=0.05, seed=1)
    t0 = time.monotonic()
    with pytest.raises(RetriesExhausted):
        asyncio.run(fl.call(refuse))
    assert time.monotonic() - t0 < 5 and calls["n"] >= 2
    fl = fleet_mod.Fleet(["http://a/v1"], lambda url: None, budget_s=3.0, backoff_s=0.05, seed=1)
    assert asyncio.run(fl.call(ok)) == "fine"
    t0 = time.monotonic()
    with pytest.raises(RetriesExhausted):
        asyncio.run(fl.call(refuse))
    assert time.monotonic() - t0 >= 0.9  # retried on towards the budget, well past the early end


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=5), st.text(max_size=200),
       st.sampled_from([None, 0.8]), st.booleans())
def test_ready_json_body_equals_the_dict_body(images, prompt, top_p, frames):
    """What `ask` sends (`chat_json`, image parts made once per frame) is, as JSON, the `request_body` a Batch
    file holds, for any frames and prompt text (quotes, control characters, non-ASCII)."""
    import json

    from streamgaze.eval.models import ModelOptions, Request
    from streamgaze.plugins.api import chat_json
    from streamgaze_builtin.models import OpenAIModel, TextOnlyModel

    cls = OpenAIModel if frames else TextOnlyModel
    m = cls("m", ModelOptions(base_url="http://127.0.0.1:9/v1", top_p=top_p))
    req = Request("q", -1, prompt, images=images)
    raw = chat_json({"model": m.model, **m.decoding()}, req.images if m.uses_frames else [], req.prompt)
    assert json.loads(raw) == m.request_body(req)
    assert chat_json({"model": "m"}, images, prompt) == chat_json({"model": "m"}, list(images), prompt)  # cached
