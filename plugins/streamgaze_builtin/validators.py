"""Built-in question validators (tasks.md 1.6): keep or drop a finished question, never edit it.

A validator is a callable ``validator(item: dict) -> str | None``: ``None`` keeps the question, a string
drops it and is the skip reason counted in ``qa_skips`` and the generation report. A spec turns them on by
name (``validators: [human_words, near_duplicate_options]``); they run after the engine has built the
question and before dedup and the per-video cap. Each says which fields it reads (``reads``), so one that needs
neither the question text nor the evidence is shown the line without them.

Word checks are by **whole word** on the key of every option, the answer text and (proactive) the target:
``left hand`` and ``hand towel`` hit ``hand``; ``handle`` and ``headphones`` do not (the reference matched
substrings, G12). Each word of a text is singularised before comparing, so ``hands`` hits ``hand``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable

from streamgaze.plugins.api import hookimpl, names

#: Names that say nothing about which object is meant (tasks.md 1.6). Data, not logic: a plugin
#: may register its own `WordValidator` with another list.
GENERIC_WORDS = ("thing", "item", "object", "stuff", "something", "anything", "unknown", "other", "misc", "miscellaneous")


def _texts(item: dict) -> list[str]:
    """What a question offers the model as an answer: options, answer text, and a proactive target."""
    texts = [*item.get("options", ()), item.get("answer_text", "")]
    target = (item.get("evidence") or {}).get("target")
    if isinstance(target, str):
        texts.append(target)
    return [t for t in texts if t]


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    return tuple(names.singularise(w) for w in names.clean(text).replace("-", " ").split())


@dataclass(frozen=True)
class WordValidator:
    """Drop a question when any offered text contains a listed word (or multi-word entry) as whole words."""

    reason: str
    entries: tuple[str, ...]
    reads = frozenset({"options", "answer_text", "evidence"})  # the item fields looked at (see `_texts`)

    def _entry_words(self) -> tuple[tuple[str, ...], ...]:
        return tuple(_words(e) for e in self.entries)

    def hit(self, text: str) -> str | None:
        words = _words(text)
        for entry in self._entry_words():
            n = len(entry)
            if n and any(words[i : i + n] == entry for i in range(len(words) - n + 1)):
                return " ".join(entry)
        return None

    def __call__(self, item: dict) -> str | None:
        return self.reason if any(self.hit(t) for t in _texts(item)) else None


@lru_cache(maxsize=65536)
def _near_duplicate(ca: str, cb: str, min_ratio: float, min_len: int) -> bool:
    """The pair test of `NearDuplicateOptions` on compacted keys (cached: the same pairs recur across questions)."""
    if ca == cb:
        return True
    if min(len(ca), len(cb)) < min_len:
        return False
    if _one_transposition(ca, cb):
        return True
    if 2.0 * min(len(ca), len(cb)) / (len(ca) + len(cb)) < min_ratio:  # the ratio's bound: at most min matches
        return False
    if 2.0 * _common_letters(ca, cb) / (len(ca) + len(cb)) < min_ratio:  # quick_ratio's bound; skips nearly all pairs
        return False
    return SequenceMatcher(None, ca, cb, autojunk=False).ratio() >= min_ratio


def _common_letters(a: str, b: str) -> int:
    """Letters the two strings share, with multiplicity: an upper bound of the matches `ratio` counts (as
    `SequenceMatcher.quick_ratio`, without building a matcher)."""
    counts_b = _letter_counts(b)
    return sum(min(n, counts_b.get(ch, 0)) for ch, n in _letter_counts(a).items())


@lru_cache(maxsize=65536)
def _letter_counts(text: str) -> dict[str, int]:
    return Counter(text)


@lru_cache(maxsize=65536)
def _compact(text: str) -> str:
    return "".join(ch for ch in names.key(text) if ch.isalnum())


def _one_transposition(a: str, b: str) -> bool:
    """Equal but for two adjacent letters swapped ("kettle" / "kettel")."""
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


@dataclass(frozen=True)
class NearDuplicateOptions:
    """Drop a question when two options are near-duplicates: the same letters once spaces and punctuation go
    ("cutting board" / "cutting-board" / "cuttingboard"), or a string similarity >= ``min_ratio`` between
    keys of at least ``min_len`` letters ("saucepan" / "sauce pans"), or one swap of adjacent letters ("kettle" /
    "kettel"). The engine's conflict rule already
    removes equal keys, sub-phrases and listed confusables; this catches spelling variants it cannot see."""

    reason: str = "near_duplicate_options"
    min_ratio: float = 0.88
    min_len: int = 5
    reads = frozenset({"options"})  # the item fields looked at: the engine need not render a question for this

    def pair(self, a: str, b: str) -> bool:
        return _near_duplicate(_compact(a), _compact(b), self.min_ratio, self.min_len)

    def __call__(self, item: dict) -> str | None:
        options = tuple(item.get("options", ()))
        if type(self).pair is not NearDuplicateOptions.pair:  # a subclass's own pair test: no shared cache
            hit = any(self.pair(a, b) for i, a in enumerate(options) for b in options[i + 1 :])
            return self.reason if hit else None
        try:
            hit = _any_near_duplicate(options, self.min_ratio, self.min_len)
        except TypeError:  # unhashable options: no cache
            hit = _any_near_duplicate.__wrapped__(options, self.min_ratio, self.min_len)
        return self.reason if hit else None


@lru_cache(maxsize=65536)
def _any_near_duplicate(options: tuple, min_ratio: float, min_len: int) -> bool:
    """Whether any two options are near-duplicates (cached: option sets recur across questions)."""
    compact = [_compact(o) for o in options]
    for i, a in enumerate(compact):
        for b in compact[i + 1 :]:
            if _near_duplicate(a, b, min_ratio, min_len):
                return True
    return False


def _entries(list_name: str) -> tuple[str, ...]:
    return tuple(str(e) for e in names.word_list(list_name)["entries"])


def builtin_validators() -> dict:
    return {
        "human_words": WordValidator("human_related", _entries("human")),
        "generic_words": WordValidator("generic_word", GENERIC_WORDS),
        "vague_words": WordValidator("vague_word", _entries("vague")),
        "near_duplicate_options": NearDuplicateOptions(),
    }


def check(item: dict, validators: Iterable) -> str | None:
    """The first drop reason of ``validators`` for ``item``, or None (the engine's order)."""
    for v in validators:
        reason = v(item)
        if reason:
            return reason
    return None


@hookimpl
def streamgaze_validators():
    return builtin_validators()
