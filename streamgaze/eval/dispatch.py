"""How the eval runner sends its requests and feeds its frames: the `Fleet` that routes, limits and retries every
request (the model's own when it has one, as ``openai:`` does; else one wrapped around the model's ``ask``), the
frame cache attached to the run's videos, and what both did, for run.json."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from streamgaze.eval.frame_cache import FrameCache, FrameCounts, default_dir
from streamgaze.eval.models import Request
from streamgaze.llm.client import RetriesExhausted
from streamgaze.llm.fleet import CALL_INFO, CallInfo, Fleet


def fleet_for(model, config) -> Fleet:
    """The model's fleet (``model.fleet``: it routes and retries its own HTTP requests), else a fleet of one
    endpoint around ``model.ask`` with the run's ceiling, retry budget and backoff."""
    own = getattr(model, "fleet", None)
    if isinstance(own, Fleet):
        return own
    return Fleet([None], lambda url: None, ceiling=config.concurrency, budget_s=config.retry_budget_s,
                 backoff_s=config.backoff_s,
                 max_attempts=max(1, config.retries) if config.retries is not None else None,
                 attempt_timeout_s=config.timeout_s * 1.5 + 1)


async def ask(model, req: Request, fleet: Fleet, timeout_s: float, secrets=()) -> tuple[str | None, str | None, float]:
    """The reply to one request: ``(text, error, latency_s)``, the latency being that of the last attempt and the
    error one line with ``secrets`` (and any key in a URL) redacted."""
    info = CallInfo()
    token = CALL_INFO.set(info)
    try:
        if getattr(model, "fleet", None) is fleet:
            text = await model.ask(req)
        else:
            text = await fleet.call(lambda _client: model.ask(req))
    except RetriesExhausted as failed:  # any adapter failure becomes an error outcome
        return None, failed.line(*secrets, limit=300), info.latency_s
    except Exception as exc:  # noqa: BLE001 - a model that raised outside the fleet: recorded, never fatal
        return None, RetriesExhausted(exc, max(1, info.attempts)).line(*secrets, limit=300), info.latency_s
    finally:
        CALL_INFO.reset(token)
    return ("" if text is None else str(text)), None, info.latency_s


def attach_frame_cache(videos: Iterable, setting: Path | bool) -> Callable[[], FrameCounts]:
    """Give every video of the run the frame cache (``setting``: True its default folder, False none, or a
    folder); returns a function that sums the run's frame counts."""
    unique = list({id(v): v for v in videos}.values())
    cache = None
    if setting is not False:
        cache = FrameCache(default_dir() if setting is True else Path(setting))
    for v in unique:
        v.disk_cache = cache
        v.counts = FrameCounts()

    def totals() -> FrameCounts:
        out = FrameCounts()
        for v in unique:
            out.decoded += v.counts.decoded
            out.cached += v.counts.cached
        return out

    return totals


def prefetch_frames(model, items: list, videos: dict, mode: str, n_frames: int, stoppers: list) -> list:
    """Start decoding the run's frames ahead, in video order on every core (`streamgaze.eval.prefetch`), when the
    model takes frames and the frame cache is on; returns ``items`` in the order their frames will be ready.
    ``stoppers`` gets the function that stops the prefetch (the runner calls it when the run ends)."""
    if not getattr(model, "uses_frames", True) or not items or any(not hasattr(it, "clip") for it in items):
        return items
    from streamgaze.eval.prefetch import plan

    pre, ordered = plan(items, videos, mode == "overlay", n_frames)
    stoppers.append(pre.close)
    return ordered


def record(run_info: dict, model, fleet: Fleet, frames: FrameCounts, last: str) -> None:
    """Write into run.json what the run's endpoints did (``endpoints``: counts, latency, limits) and how its frames
    were got (``frames`` in the last run's entry ``last``: the top-level ``frames`` is a setting that `merge`
    compares across shards, these counts are not)."""
    if getattr(model, "fleet", None) is fleet:
        run_info["endpoints"] = fleet.stats()
    if getattr(model, "uses_frames", True) and isinstance(run_info.get(last), dict):
        run_info[last]["frames"] = frames.as_dict()
