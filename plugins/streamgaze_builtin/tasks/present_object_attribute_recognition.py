"""OAR (tasks.md 2.7): what colour (material, shape, state, texture) is the object the user looks at?"""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from streamgaze import hookimpl
from streamgaze.engine import Draft, PresentParams, Skip, TaskLogic, names, present_candidates
from streamgaze.engine.generate import distractors_assured
from streamgaze_builtin import spec_path

TASK_ID = "present_object_attribute_recognition"
KIND = "attribute"


class Params(PresentParams):
    oar_attributes: list[str] = Field(
        default_factory=lambda: ["color", "material", "shape", "state", "texture"],
        min_length=1,
        description="attributes that may be asked, in choice order (never size, usage, position)",
    )
    invalid_values: list[str] = Field(
        default_factory=lambda: ["unknown", "none", "n/a", "other", "various"], description="values counted as absent"
    )
    fallback_list: str = Field("attribute_values", description="word list (streamgaze/data) of values per attribute")


def values_of(row, attribute: str, invalid: frozenset[str]) -> tuple[str, ...]:
    """A row's valid values for one attribute, in the labeller's order (the first is the primary value)."""
    memo = row.__dict__.setdefault("_oar_values", {})  # rows are shared by every candidate of a video
    found = memo.get((attribute, invalid))
    if found is None:
        found = memo[(attribute, invalid)] = _values_of(row, attribute, invalid)
    return found


def _values_of(row, attribute: str, invalid: frozenset[str]) -> tuple[str, ...]:
    raw = row.values.get(attribute)
    items = raw if isinstance(raw, (list, tuple)) else (raw,)
    return _valid_values(tuple(v for v in items if isinstance(v, (str, int, float)) and not isinstance(v, bool)), invalid)


@lru_cache(maxsize=65536)
def _valid_values(items: tuple, invalid: frozenset[str]) -> tuple[str, ...]:
    texts = (names.clean(str(v)) for v in items)
    return tuple(t for t in texts if t and names.key(t, KIND) not in invalid)


class AttributeOfGazed(TaskLogic):
    Params = Params
    context_fields = frozenset({"attribute"})

    def candidates(self, video, params):
        return present_candidates(video, params)

    def build(self, cand, past, params, rng, *, video):
        e = cand.episode
        obj = e.gazed
        invalid = frozenset(names.key(v, KIND) for v in params.invalid_values)
        # The answer comes from this episode's row first, then the object's latest earlier rows (all causal).
        own = [r for r in past.attributes_of(obj) if r.episode_id == e.id]
        earlier = sorted((r for r in past.attributes_of(obj) if r.episode_id != e.id), key=lambda r: -r.t_start)
        rows = own + earlier
        seen = past.seen_names - {obj}
        others = [r for r in past.attribute_rows if r.name in seen]
        fallbacks = names.word_list(params.fallback_list)
        asked = []  # (attribute, answer, pool, fallback, exclude), in oar_attributes order
        for attribute in params.oar_attributes:
            answer = next((vals[0] for r in rows if (vals := values_of(r, attribute, invalid))), None)
            if answer is None:
                continue
            # X: every value the object has for this attribute, in any row of the video (exclusions may look ahead).
            exclude = sorted({v for r in video.attributes_of(obj) for v in values_of(r, attribute, invalid)})
            pool = sorted({v for r in others for v in values_of(r, attribute, invalid)})
            fallback = [v for v in (fallbacks.get(attribute) or []) if names.key(str(v), KIND) not in invalid]
            asked.append((attribute, answer, pool, fallback, exclude))
        if not asked:
            return Skip("no_attributes")
        feasible = [a for a in asked if distractors_assured(a[1], a[4], a[2], a[3], KIND)]
        if not feasible:
            return Skip("too_few_distractors")
        # Draw (1), the answer: which attribute to ask, among those that always get 3 distractors.
        attribute, answer, pool, fallback, exclude = feasible[int(rng.integers(len(feasible)))]
        return Draft(
            answer=answer,
            pool=pool,
            fallback=fallback,
            exclude=exclude,
            kind=KIND,
            context={"attribute": attribute},
            evidence={"episode": e.id, "object": obj, "attribute": attribute, "value": names.display(answer, KIND)},
        )


@hookimpl
def streamgaze_task_specs():
    return [spec_path(TASK_ID)]


@hookimpl
def streamgaze_answer_logic():
    return {"attribute_of_gazed": AttributeOfGazed()}
