"""Built-in models: the ``random`` and ``first-option`` baselines, the blind ``prior``, ``longest`` and
``shortest`` baselines (answers from the option texts alone), and any OpenAI-compatible endpoint
(``openai:<model>`` with frames, ``text-only:<model>`` without)."""
from __future__ import annotations

import hashlib

from streamgaze.plugins.api import (
    BLIND_BASELINES,
    DEFAULT_ENDPOINT,
    LETTERS,
    StreamGazeError,
    ModelOptions,
    Request,
    chat_json,
    hookimpl,
    image_part,
    openai_fleet,
    post_chat,
    redact_url,
    resolve_api_key,
    blind_answers,
)


class RandomModel:
    """A uniformly random letter (or Yes/No for proactive points), seeded per question and point."""

    uses_frames = False
    uses_prompt = False
    endpoint = None

    def __init__(self, spec: str, options: ModelOptions):
        self.seed = options.seed

    async def ask(self, request: Request) -> str:
        digest = hashlib.sha256(f"{self.seed}|{request.question_id}|{request.point_idx}".encode()).digest()
        r = int.from_bytes(digest[:8], "big")
        if request.proactive or not request.options:
            return "Yes" if r % 2 == 0 else "No"
        return LETTERS[r % len(request.options)]


class FirstOptionModel:
    """Always "A" (or "Yes" for proactive points)."""

    uses_frames = False
    uses_prompt = False
    endpoint = None

    def __init__(self, spec: str, options: ModelOptions):
        pass

    async def ask(self, request: Request) -> str:
        return "Yes" if request.proactive or not request.options else "A"


class BlindModel:
    """A blind baseline (``prior``, ``longest``, ``shortest``; `streamgaze.plugins.api.blind_answers`): the
    answers are worked out once from every question being evaluated (`prepare`), then looked up."""

    uses_frames = False
    uses_prompt = False
    endpoint = None
    baseline = ""

    def __init__(self, spec: str, options: ModelOptions):
        self.answers: dict[tuple[str, int], str] | None = None

    def prepare(self, questions: list[dict]) -> None:
        self.answers = blind_answers(questions, self.baseline)

    async def ask(self, request: Request) -> str:
        if self.answers is None:
            raise StreamGazeError(f"the {self.baseline} baseline answers from the question set: call prepare(questions) first")
        answer = self.answers.get((request.question_id, request.point_idx))
        if answer is None and request.proactive:  # a streaming poll: every point of a question gets one answer
            answer = self.answers.get((request.question_id, 0))
        if answer is None:
            raise StreamGazeError(f"question {request.question_id!r} was not in the question set given to prepare()")
        return answer.capitalize() if request.proactive else answer


def _blind(name: str) -> type:
    return type(f"{name.capitalize()}Baseline", (BlindModel,), {"baseline": name,
                                                                 "__doc__": f"The blind `{name}` baseline."})


class OpenAIModel:
    """Any OpenAI-compatible chat completions endpoint, or several (each request to the least busy); frames as
    base64 JPEG ``image_url`` parts."""

    uses_frames = True
    uses_prompt = True

    def __init__(self, spec: str, options: ModelOptions):
        urls = options.endpoints()
        # Batch files are written or read without sending anything: no key needed then
        key = "unused" if options.offline else resolve_api_key(None, urls[0], f"model {spec!r}")
        self.model = spec
        self.options = options
        self.endpoint = redact_url(urls[0] or DEFAULT_ENDPOINT)  # recorded: never a key
        # routing, the adaptive in-flight limit and the retries (until the budget is spent) are the fleet's
        self.fleet = openai_fleet(key, urls, options.timeout_s, ceiling=options.concurrency,
                                  budget_s=options.retry_budget_s, backoff_s=options.backoff_s,
                                  max_attempts=max(1, options.retries) if options.retries is not None else None)

    def content(self, request: Request) -> list[dict]:
        parts = [image_part(jpg) for jpg in request.images] if self.uses_frames else []
        parts.append({"type": "text", "text": request.prompt})
        return parts

    def decoding(self) -> dict:
        """The body's fields besides the messages."""
        return {"temperature": self.options.temperature, "max_tokens": self.options.max_tokens,
                **({"top_p": self.options.top_p} if self.options.top_p is not None else {})}

    def request_body(self, request: Request) -> dict:
        """The chat-completions body of one request: what `ask` sends and what a Batch file holds."""
        return {"model": self.model, "messages": [{"role": "user", "content": self.content(request)}],
                **self.decoding()}

    async def ask(self, request: Request) -> str:
        """The reply; raises `RetriesExhausted` when the request failed for good or its retry budget ran out."""
        # the body goes as ready JSON (equal to `request_body`): the frames' base64 and JSON are made once per
        # frame, and the SDK's parameter transform is skipped; together most of a request's CPU
        # (bench/bench_client.py)
        raw = chat_json({"model": self.model, **self.decoding()}, request.images if self.uses_frames else [],
                        request.prompt)
        resp = await self.fleet.call(lambda client: post_chat(client, raw))
        if not resp.choices:
            return ""
        return resp.choices[0].message.content or ""

    async def aclose(self) -> None:
        await self.fleet.aclose()


class TextOnlyModel(OpenAIModel):
    """The same endpoint, the prompt only (no frames): the blind baseline."""

    uses_frames = False


@hookimpl
def streamgaze_models():
    return {"random": RandomModel, "first-option": FirstOptionModel, **{b: _blind(b) for b in BLIND_BASELINES},
            "openai:": OpenAIModel, "text-only:": TextOnlyModel}
