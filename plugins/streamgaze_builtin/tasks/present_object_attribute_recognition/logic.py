"""OAR (tasks.md 2.7): what colour (material, shape, state, texture) is the object the user looks at?

Optional attributes from captions (``oar_caption_attributes: true``, off by default): a row that lacks an asked
attribute but has a free-text ``caption`` (the reference's ``detailed_caption``, as `streamgaze-metadata` imports
it, or the labeller's caption) gets that attribute from an OpenAI-compatible model, which turns the caption into a
JSON object of the asked attributes. The call is greedy and cached per caption text (`streamgaze.llm.cache`), so every
candidate, worker process and rerun reads the same values. The values are short lower-case words; anything else
(and every ``invalid_values`` entry) counts as absent, as does a reply that is not a JSON object. They then follow
the ordinary rules: answer = primary value, distractors from data and the YAML lists, conflicts, X, exactly four
options. A row's caption belongs to its episode, so the question reads only the rows it read before.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import NamedTuple

from pydantic import Field

from streamgaze.plugins.api import (
    Draft,
    LLMStep,
    PresentParams,
    Skip,
    StreamGazeError,
    TaskLogic,
    distractors_assured,
    llm_step_params,
    names,
    present_candidates,
)

TASK_ID = "present_object_attribute_recognition"
KIND = "attribute"

#: The optional caption step: the switch ``oar_caption_attributes`` and its ``oar_caption_*`` settings (model,
#: endpoint, key, cache; `streamgaze.tasks.llm_step`, plus the task's own below), all left out of the dumped params
#: (and so of the generation report) while it is off, so default output stays byte-identical. The key is never dumped.
CAPTIONS = LLMStep("oar_caption_attributes", prefix="oar_caption",
                   help="read missing attributes from a row's caption with an LLM")
CAPTION_SWITCH = CAPTIONS.switch

CAPTION_SYSTEM = (
    "You read a caption that describes one object seen in a first-person (egocentric) video and extract the "
    "object's visible attributes. Reply with a JSON object with exactly these keys: {keys}. {hints} Each value is "
    "a lower-case word or phrase of at most {max_words} words that the caption states or directly implies, or null "
    "when the caption does not say. Reply with the JSON object only."
)
CAPTION_HINTS = {
    "color": "color: its main colour (red, white, silver, ...)",
    "material": "material: what it is made of (metal, plastic, wood, ...)",
    "shape": "shape: its shape (round, rectangular, cylindrical, ...)",
    "state": "state: its condition (open, closed, empty, full, cut, clean, dirty, on, off, ...)",
    "texture": "texture: its surface (smooth, rough, soft, shiny, ...)",
}
_WORDS = re.compile(r"[^\W\d_]+(?:[ -][^\W\d_]+)*")  # letters, words joined by one space or hyphen
_KEY_ALIASES = {"colour": "color"}


class Params(llm_step_params(CAPTIONS), PresentParams):
    oar_attributes: list[str] = Field(
        default_factory=lambda: ["color", "material", "shape", "state", "texture"],
        min_length=1,
        description="attributes that may be asked, in choice order (never size, usage, position)",
    )
    invalid_values: list[str] = Field(
        default_factory=lambda: ["unknown", "none", "n/a", "other", "various"], description="values counted as absent"
    )
    fallback_list: str = Field("attribute_values", description="word list (streamgaze/tasks/data) of values per attribute")
    oar_caption_max_words: int = Field(2, ge=1, description="a longer value counts as absent")
    oar_caption_json_mode: bool = Field(True, description="request a JSON object (response_format); off for servers without it")
    oar_caption_concurrency: int = Field(4, ge=1, description="caption requests in flight per worker process")


# ---- attributes from captions (optional) -----------------------------------------------------------------------

class CaptionReader:
    """Attributes from caption texts through one cached LLM: greedy, one request per distinct caption (and
    settings), parsed once per process."""

    def __init__(self, client, asked: tuple[str, ...], max_words: int, json_mode: bool, concurrency: int):
        self.llm, self.asked, self.max_words = client, asked, max_words
        self.json_mode, self.concurrency = json_mode, concurrency
        hints = " ".join(f"{CAPTION_HINTS[a]}." for a in asked if a in CAPTION_HINTS)
        self.system = CAPTION_SYSTEM.format(keys=", ".join(asked), hints=hints, max_words=max_words)
        self.key = (client.model, client.base_url, str(client.cache_dir), asked, max_words, json_mode)
        self._parsed: dict[str, dict[str, tuple[str, ...]]] = {}

    def prefetch(self, captions) -> None:
        """Ask for every uncached caption at once (``concurrency`` requests in flight); answers only fill caches."""
        todo = sorted({t for t in map(caption_text, captions) if t and t not in self._parsed})
        if todo:
            self._call(self.llm.complete_many, todo, concurrency=self.concurrency)

    def values(self, caption: str) -> dict[str, tuple[str, ...]]:
        """Attribute -> values read from one caption ({} when the reply is unusable)."""
        text = caption_text(caption)
        found = self._parsed.get(text)
        if found is None:
            reply = self._call(self.llm.complete, text) if text else ""
            found = self._parsed[text] = parse_caption_reply(reply, self.asked, self.max_words)
        return found

    def _call(self, fn, arg, **kw):
        try:
            return fn(arg, system=self.system, json_object=self.json_mode, **kw)
        except StreamGazeError as exc:
            raise StreamGazeError(f"{CAPTION_SWITCH} (task {TASK_ID}): {exc.message}") from None


def caption_text(caption) -> str:
    """The text a caption is asked and cached by: its words joined by single spaces ("" for a non-text)."""
    return " ".join(caption.split()) if isinstance(caption, str) else ""


def parse_caption_reply(text: str, asked, max_words: int) -> dict[str, tuple[str, ...]]:
    """The asked attributes in a model's reply: a JSON object (also inside code fences or prose) of attribute ->
    value or list of values. A value is kept when it is one to ``max_words`` words of letters; the rest count as
    absent, as does everything when no JSON object is found."""
    obj = _json_object(text)
    if obj is None:
        return {}
    by_key: dict[str, object] = {}
    for k, v in obj.items():
        if isinstance(k, str):
            name = names.clean(k).replace(" ", "_")
            by_key.setdefault(_KEY_ALIASES.get(name, name), v)
    out: dict[str, tuple[str, ...]] = {}
    for attribute in asked:
        raw = by_key.get(attribute)
        items = raw if isinstance(raw, list) else [raw]
        kept: list[str] = []
        for item in items:
            if not isinstance(item, str):
                continue
            value = names.clean(item)
            if _WORDS.fullmatch(value) and len(value.replace("-", " ").split()) <= max_words and value not in kept:
                kept.append(value)
        if kept:
            out[attribute] = tuple(kept)
    return out


def _json_object(text) -> dict | None:
    """The first JSON object in ``text``: the whole text, else the first ``{`` that starts a decodable object."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _end = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


@lru_cache(maxsize=8)
def _reader(settings, asked, max_words, json_mode, concurrency) -> CaptionReader:
    return CaptionReader(CAPTIONS.client_of(settings, max_tokens=128), asked, max_words, json_mode, concurrency)


def caption_reader(params: Params) -> CaptionReader | None:
    """The caption reader of these params (one per process and setting), or None when the step is off."""
    if not CAPTIONS.on(params):
        return None
    return _reader(CAPTIONS.settings(params), tuple(params.oar_attributes), params.oar_caption_max_words,
                   params.oar_caption_json_mode, params.oar_caption_concurrency)


# ---- values of a row ---------------------------------------------------------------------------------------------

def values_of(row, attribute: str, invalid: frozenset[str], captions: CaptionReader | None = None) -> tuple[str, ...]:
    """A row's valid values for one attribute, in the labeller's order (the first is the primary value). With a
    caption reader, a row without such a value takes those its caption gives."""
    memo = row.__dict__.setdefault("_oar_values", {})  # rows are shared by every candidate of a video
    mkey = (attribute, invalid) if captions is None else (attribute, invalid, captions.key)
    found = memo.get(mkey)
    if found is None:
        found = memo[mkey] = _row_values(row, attribute, invalid, captions)
    return found


def _row_values(row, attribute: str, invalid: frozenset[str], captions: CaptionReader | None) -> tuple[str, ...]:
    found = _values_of(row, attribute, invalid)
    if not found and captions is not None:
        found = _caption_values(row, attribute, invalid, captions)
    return found


def _caption_values(row, attribute: str, invalid: frozenset[str], captions: CaptionReader) -> tuple[str, ...]:
    caption = row.values.get("caption")
    if not caption_text(caption):
        return ()
    return _valid_values(captions.values(caption).get(attribute, ()), invalid)


def _needs_caption(row, attributes, invalid) -> bool:
    return bool(caption_text(row.values.get("caption"))) and any(not _values_of(row, a, invalid) for a in attributes)


def _values_of(row, attribute: str, invalid: frozenset[str]) -> tuple[str, ...]:
    raw = row.values.get(attribute)
    if raw is None:  # the common cases first: an absent attribute, one text
        return ()
    if type(raw) is str:
        return _valid_values((raw,), invalid)
    items = raw if isinstance(raw, (list, tuple)) else (raw,)
    return _valid_values(tuple(v for v in items if isinstance(v, (str, int, float)) and not isinstance(v, bool)), invalid)


@lru_cache(maxsize=65536)
def _valid_values(items: tuple, invalid: frozenset[str]) -> tuple[str, ...]:
    texts = (names.clean(str(v)) for v in items)
    return tuple(t for t in texts if t and names.key(t, KIND) not in invalid)


def _rows_by_name(timeline) -> dict[str, list[int]]:
    """Name -> positions of its rows in ``timeline.attribute_rows``; made once per timeline."""
    def make() -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for pos, r in enumerate(timeline.attribute_rows):
            found.setdefault(r.name, []).append(pos)
        return found

    return timeline.memo((TASK_ID, "rows_by_name"), make)


class _AttributeIndex(NamedTuple):
    """One attribute's values in every row of a timeline, made once per timeline (and settings): a view's rows
    are the timeline's first n, so each candidate reads them by position instead of rescanning them."""

    values: list[tuple[str, ...]]  # `values_of` of each row, by position
    firsts: dict[str, dict[str, int]]  # name -> value -> position of the first row giving the name that value


def _index(timeline, attribute: str, invalid: frozenset[str], captions: CaptionReader | None) -> _AttributeIndex:
    memo = timeline.memo((TASK_ID, "index"), dict)
    mkey = (attribute, invalid) if captions is None else (attribute, invalid, captions.key)
    found = memo.get(mkey)
    if found is None:
        values = [_row_values(r, attribute, invalid, captions) for r in timeline.attribute_rows]
        firsts: dict[str, dict[str, int]] = {}
        for name, positions in _rows_by_name(timeline).items():
            by_value = firsts[name] = {}
            for pos in positions:
                for v in values[pos]:
                    by_value.setdefault(v, pos)
        found = memo[mkey] = _AttributeIndex(values, firsts)
    return found


@lru_cache(maxsize=64)
def _invalid_keys(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names.key(v, KIND) for v in values)


@lru_cache(maxsize=256)
def _fallback(list_name: str, attribute: str, invalid: frozenset[str]) -> tuple:
    """The word list's values of one attribute, less the invalid ones."""
    return tuple(v for v in (names.word_list(list_name).get(attribute) or []) if names.key(str(v), KIND) not in invalid)


class AttributeOfGazed(TaskLogic):
    Params = Params
    context_fields = frozenset({"attribute"})

    def candidates(self, video, params):
        captions = caption_reader(params)
        if captions is not None and video.usable:
            # Warm the caches with every caption the video's questions may read, sent concurrently; the
            # questions read them exactly as they would without this (each from its own rows).
            invalid = _invalid_keys(tuple(params.invalid_values))
            captions.prefetch(r.values.get("caption") for r in video.attribute_rows
                              if _needs_caption(r, params.oar_attributes, invalid))
        return present_candidates(video, params)

    def audit_candidates(self, video, params):
        # A released question may be about any gaze of an object, not only its longest.
        return present_candidates(video, params.model_copy(update={"present_one_per_object": False}))

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        obj = e.gazed
        captions = caption_reader(params)
        invalid = _invalid_keys(tuple(params.invalid_values))
        # Past rows are the first n of the video's rows (views are prefixes), so they are read by position from
        # per-video indexes; a `past` that is no view of ``video`` is indexed itself.
        rows_of = video if past.is_cut_of(video) else past
        n = len(past.attribute_rows)
        past_rows = [pos for pos in _rows_by_name(rows_of).get(obj, ()) if pos < n]
        # The answer comes from this episode's row first, then the object's latest earlier rows (all causal).
        row_at = rows_of.attribute_rows
        own = [pos for pos in past_rows if row_at[pos].episode_id == e.id]
        earlier = sorted((pos for pos in past_rows if row_at[pos].episode_id != e.id),
                         key=lambda pos: -row_at[pos].t_start)
        order = own + earlier
        seen = past.seen_names - {obj}
        asked = []  # (attribute, answer, pool, fallback, exclude, source row), in oar_attributes order
        for attribute in params.oar_attributes:
            index = _index(rows_of, attribute, invalid, captions)
            source = next((pos for pos in order if index.values[pos]), None)
            if source is None:
                continue
            answer = index.values[source][0]
            # X: every value the object has for this attribute, in any row of the video (exclusions may look ahead).
            exclude = sorted(_index(video, attribute, invalid, captions).firsts.get(obj, ()))
            firsts = index.firsts
            pool = sorted({v for name in firsts.keys() & seen for v, pos in firsts[name].items() if pos < n})
            fallback = list(_fallback(params.fallback_list, attribute, invalid))
            asked.append((attribute, answer, pool, fallback, exclude, row_at[source]))
        if not asked:
            return Skip("no_attributes")
        feasible = [a for a in asked if distractors_assured(a[1], a[4], a[2], a[3], KIND)]
        if not feasible:
            return Skip("too_few_distractors")
        # Draw (1), the answer: which attribute to ask, among those that always get 3 distractors.
        attribute, answer, pool, fallback, exclude, source = feasible[int(rng.integers(len(feasible)))]
        evidence = {"episode": e.id, "object": obj, "attribute": attribute, "value": names.display(answer, KIND)}
        if captions is not None:  # only with the step on, so default evidence is unchanged
            evidence["from_caption"] = not _values_of(source, attribute, invalid)
        return Draft(
            answer=answer,
            pool=pool,
            fallback=fallback,
            exclude=exclude,
            kind=KIND,
            context={"attribute": attribute},
            evidence=evidence,
        )

    def audit_build(self, cand, past, params, rng, *, video, released):
        """Build for the attribute the released question asks (``attribute_type``), not a drawn one."""
        attribute = released.get("attribute_type")
        if not isinstance(attribute, str) or not attribute.strip():
            return Skip("attribute_not_named")
        attribute = attribute.strip().lower()
        if attribute not in params.oar_attributes:
            return Skip("attribute_not_asked")
        return self.build(cand, past, params.model_copy(update={"oar_attributes": [attribute]}), rng, video=video)

    def release_fields(self, question, store):
        ev = question["evidence"]
        return {"attribute_type": ev["attribute"], "object_name": ev["object"]}


#: The answer logic this task's spec names (`logic:`), collected by `streamgaze_builtin.tasks`.
LOGIC = {"attribute_of_gazed": AttributeOfGazed()}
