"""Built-in models: the ``random`` and ``first-option`` baselines, and any OpenAI-compatible endpoint
(``openai:<model>`` with frames, ``text-only:<model>`` without)."""
from __future__ import annotations

import base64
import hashlib
import os

from streamgaze import hookimpl
from streamgaze.errors import StreamGazeError
from streamgaze.eval.models import ModelOptions, Request

LETTERS = "ABCDEFGH"


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


class OpenAIModel:
    """Any OpenAI-compatible chat completions endpoint; frames as base64 JPEG ``image_url`` parts."""

    uses_frames = True
    uses_prompt = True

    def __init__(self, spec: str, options: ModelOptions):
        from openai import AsyncOpenAI

        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            if not options.base_url:
                raise StreamGazeError(f"model {spec!r} needs OPENAI_API_KEY in the environment, or --base-url")
            key = "unused"  # a local endpoint that wants no key
        self.model = spec
        self.options = options
        self.endpoint = options.base_url or "https://api.openai.com/v1"
        # retries are the runner's (exponential backoff on 429/5xx/timeouts)
        self.client = AsyncOpenAI(api_key=key, base_url=options.base_url, max_retries=0, timeout=options.timeout_s)

    def content(self, request: Request) -> list[dict]:
        parts: list[dict] = []
        if self.uses_frames:
            for jpg in request.images:
                url = "data:image/jpeg;base64," + base64.b64encode(jpg).decode("ascii")
                parts.append({"type": "image_url", "image_url": {"url": url}})
        parts.append({"type": "text", "text": request.prompt})
        return parts

    async def ask(self, request: Request) -> str:
        resp = await self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": self.content(request)}],
            temperature=self.options.temperature,
            max_tokens=self.options.max_tokens,
        )
        if not resp.choices:
            return ""
        return resp.choices[0].message.content or ""

    async def aclose(self) -> None:
        await self.client.close()


class TextOnlyModel(OpenAIModel):
    """The same endpoint, the prompt only (no frames): the blind baseline."""

    uses_frames = False


@hookimpl
def streamgaze_models():
    return {"random": RandomModel, "first-option": FirstOptionModel, "openai:": OpenAIModel, "text-only:": TextOnlyModel}
