"""A task's optional LLM step: its params, their check and their dump, written once for every task that has one.

FAP rewords action labels (``fap_reword``); OAR reads attributes from captions (``oar_caption_attributes``). A step
is declared once (`LLMStep`: its switch and the prefix of its settings) and a task's ``Params`` inherit the mixin
`llm_step_params` makes of it, which brings:

- the params: ``<switch>`` (off by default), ``<prefix>_model``, ``<prefix>_base_url``, ``<prefix>_api_key`` (never
  dumped) and ``<prefix>_cache_dir``; unset ones come from the environment (`streamgaze.llm.cache`);
- the check: a switched-on step needs a model (a ValueError naming the param, which the spec loader reports as
  one line);
- the dump: the step's params come last, after the task's own; while the step is off every ``<prefix>_*`` param
  (the task's own step settings too, e.g. ``<prefix>_max_words``) is left out, so default output (and the
  generation report) does not depend on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_serializer, model_validator

from streamgaze.llm import cache as llm


@dataclass(frozen=True)
class LLMStep:
    """One optional LLM step: ``switch`` turns it on; its settings are named ``<prefix>_model`` and so on."""

    switch: str
    prefix: str
    help: str = "use an LLM"

    def param(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def is_step_param(self, name: str) -> bool:
        return name == self.switch or name.startswith(self.prefix + "_")

    def on(self, params: BaseModel) -> bool:
        return bool(getattr(params, self.switch))

    def settings(self, params: BaseModel) -> tuple[str | None, str | None, str | None, str | None]:
        """``(model, base_url, api_key, cache_dir)`` as set in ``params`` (None: from the environment)."""
        key = getattr(params, self.param("api_key"))
        return (getattr(params, self.param("model")), getattr(params, self.param("base_url")),
                key.get_secret_value() if key else None, getattr(params, self.param("cache_dir")))

    def client(self, params: BaseModel, max_tokens: int = 64) -> llm.CachedLLM:
        """The step's cached LLM (one per process and setting)."""
        return self.client_of(self.settings(params), max_tokens)

    def client_of(self, settings: tuple, max_tokens: int = 64) -> llm.CachedLLM:
        """The cached LLM of `settings` ``(model, base_url, api_key, cache_dir)``."""
        return llm.step_llm(self.switch, *settings, max_tokens=max_tokens)


class LLMStepParams(BaseModel):
    """The base of the mixins `llm_step_params` makes: the check and the dump of ``llm_step``'s params."""

    model_config = ConfigDict(extra="forbid")
    llm_step: ClassVar[LLMStep]

    @model_validator(mode="after")
    def _check_llm_step(self):
        step = self.llm_step
        llm.check_step_model(step.switch, step.on(self), getattr(self, step.param("model")), step.param("model"))
        return self

    @model_serializer(mode="wrap")
    def _dump_llm_step(self, handler):
        step = self.llm_step
        data = handler(self)
        ours = [k for k in data if step.is_step_param(k)]
        data = {**{k: v for k, v in data.items() if k not in ours}, **{k: data[k] for k in ours}}
        return llm.drop_step_params(data, step.on(self), [k for k in ours if k.startswith(step.prefix + "_")])


def llm_step_params(step: LLMStep) -> type[LLMStepParams]:
    """The params mixin of one step (see the module's docstring); a task's ``Params`` inherit it."""
    mixin = create_model(
        f"LLMStepParams_{step.switch}",
        __base__=LLMStepParams,
        __module__=__name__,
        **{
            step.switch: (bool, Field(False, description=step.help)),
            step.param("model"): (str | None, Field(None, description=f"model name; else {llm.ENV_MODEL}")),
            step.param("base_url"): (str | None, Field(None, description=f"OpenAI-compatible endpoint; else {llm.ENV_BASE_URL}")),
            step.param("api_key"): (SecretStr | None, Field(None, exclude=True, description="else OPENAI_API_KEY; never written")),
            step.param("cache_dir"): (str | None, Field(None, description=f"else {llm.ENV_CACHE} or ~/.cache/streamgaze/llm")),
        },
    )
    mixin.llm_step = step
    return mixin
