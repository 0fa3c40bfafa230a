"""Names: the key of a text, singularisation, synonyms, and the conflict rule that keeps one option correct.

All word lists are YAML data in ``streamgaze/tasks/data`` (tasks.md 1.3 and 1.5). Keys are what the engine compares;
display texts are what questions show.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib.resources import files
from typing import Iterable, Literal

import yaml

Kind = Literal["object", "attribute", "label", "sequence"]

_STRIP = " \t\r\n.,;:!?\"'`‘’“”"
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=None)
def word_list(name: str) -> dict:
    """One YAML file of ``streamgaze/tasks/data``, parsed once."""
    return yaml.safe_load(files("streamgaze.tasks.data").joinpath(f"{name}.yaml").read_text(encoding="utf-8"))


@lru_cache(maxsize=65536)
def clean(text: str) -> str:
    """NFKC, lower case, ``_`` as space, surrounding punctuation and quotes stripped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("_", " ")
    return _SPACES.sub(" ", text.strip(_STRIP)).strip(_STRIP)


@lru_cache(maxsize=None)
def _plural_data() -> tuple[dict, frozenset]:
    data = word_list("plural")
    return dict(data["irregular"]), frozenset(data["invariant"])


def singularise(word: str) -> str:
    irregular, invariant = _plural_data()
    if word in irregular:
        return irregular[word]
    if word in invariant or len(word) <= 3:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("oes"):
        return word[:-2]
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=None)
def _synonyms() -> dict[str, str]:
    table = {}
    for group in word_list("synonyms")["groups"]:
        canonical = clean(group[0])
        for name in group:
            table[clean(name)] = canonical
    return table


@lru_cache(maxsize=65536)
def key(text: str, kind: Kind = "object") -> str:
    """The comparison key of a text (tasks.md 1.3)."""
    cleaned = clean(text)
    if kind == "sequence" or not cleaned:
        return cleaned
    words = cleaned.split(" ")
    if kind == "label":
        return " ".join([words[0]] + [singularise(w) for w in words[1:]])
    words[-1] = singularise(words[-1])
    joined = " ".join(words)
    return _synonyms().get(joined, joined)


def display(text: str, kind: Kind = "object") -> str:
    """What a question shows: an object's canonical name; a label's or value's cleaned text."""
    return key(text, kind) if kind == "object" else clean(text)


@lru_cache(maxsize=None)
def _confusable() -> frozenset[frozenset[str]]:
    return frozenset(frozenset(key(v, "attribute") for v in pair) for pair in word_list("confusable")["pairs"])


def _sub_phrase(short: str, long: str) -> bool:
    return f" {short} " in f" {long} "


@lru_cache(maxsize=262144)
def conflict(a: str, b: str, kind: Kind = "object") -> bool:
    """True when two texts cannot both be options: equal keys, one a whole-word sub-phrase of the other,
    or a listed confusable pair. Sequences (GSM) conflict only when equal."""
    ka, kb = key(a, kind), key(b, kind)
    if ka == kb:
        return True
    if kind == "sequence":
        return False
    if _sub_phrase(ka, kb) or _sub_phrase(kb, ka):
        return True
    return frozenset((ka, kb)) in _confusable()


@lru_cache(maxsize=65536)
def _sub_phrases(k: str) -> frozenset[str]:
    """Every contiguous whole-word run of a key (the key itself included)."""
    words = k.split(" ")
    return frozenset(" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))


@lru_cache(maxsize=None)
def _partners() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for pair in _confusable():
        a, b = sorted(pair)
        table.setdefault(a, set()).add(b)
        table.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in table.items()}


@lru_cache(maxsize=65536)
def _ruled_out_by(k: str) -> frozenset[str]:
    """The keys that conflict with ``k`` by lookup: its sub-phrases (``k`` itself included) and confusable partners."""
    return _sub_phrases(k) | _partners().get(k, frozenset())


class ConflictSet:
    """Texts accepted so far; `conflicts(text)` answers `conflict` against all of them with set lookups,
    which is what drawing many options from large pools needs."""

    def __init__(self, texts: Iterable[str] = (), kind: Kind = "object"):
        self.kind = kind
        self.keys: set[str] = {key(text, kind) for text in texts}
        # The keys ruled out by lookup (what `add` extends one key at a time); a key that has an accepted key as a
        # sub-phrase is the one case left to test (`conflicts`).
        self.ruled_out: set[str] = set().union(*map(_ruled_out_by, self.keys)) if kind != "sequence" else set()

    def add(self, text: str) -> None:
        k = key(text, self.kind)
        self.keys.add(k)
        if self.kind != "sequence":
            self.ruled_out |= _ruled_out_by(k)

    def admissible(self, texts: Iterable[str]) -> list[str]:
        """`sorted_by_key` of ``texts`` without those that `conflicts` rejects (the same test, inlined on keys
        made once per pool: drawing runs it on every item of every pool)."""
        ordered, keys_of = _keyed(texts, self.kind)
        keys = self.keys
        if self.kind == "sequence":
            return [t for t, k in zip(ordered, keys_of) if k not in keys]
        ruled_out = self.ruled_out  # every accepted key is among them (its own sub-phrase)
        return [t for t, k in zip(ordered, keys_of)
                if k not in ruled_out and (" " not in k or keys.isdisjoint(_sub_phrases(k)))]

    def conflicts(self, text: str) -> bool:
        k = key(text, self.kind)
        if k in self.keys:
            return True
        if self.kind == "sequence":
            return False
        return k in self.ruled_out or not self.keys.isdisjoint(_sub_phrases(k))


def conflicts_any(text: str, others: Iterable[str], kind: Kind = "object") -> bool:
    return ConflictSet(others, kind).conflicts(text)


@lru_cache(maxsize=65536)
def in_list(name: str, list_name: str) -> bool:
    """Whether a name matches a word list by its mode: ``head`` (last words), ``word`` or ``exact``."""
    data = word_list(list_name)
    k = key(name)
    entries = [key(e) for e in data["entries"]]
    mode = data.get("mode", "exact")
    if mode == "exact":
        return k in entries
    if mode == "word":
        return any(_sub_phrase(e, k) for e in entries)
    return any(k == e or k.endswith(" " + e) for e in entries)


_KEYED: dict = {}  # (frozenset or tuple, kind) -> `_keyed`: views share their prefix name sets, so they recur


def sorted_by_key(names: Iterable[str], kind: Kind = "object") -> list[str]:
    """Unique by key (first spelling wins), sorted by key: the order every draw starts from."""
    return list(_keyed(names, kind)[0])


def _keyed(names: Iterable[str], kind: Kind) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`sorted_by_key` and the keys of its texts, made once per pool: pools and word lists recur as equal lists."""
    if type(names) is list:
        names = tuple(names)
    if type(names) is frozenset or type(names) is tuple:
        # A frozenset has no order, so "first spelling" is by iteration order, the same within a process.
        try:
            found = _KEYED.get((names, kind))
        except TypeError:  # an unhashable item: nothing to share
            return _make_keyed(names, kind)
        if found is None:
            if len(_KEYED) >= 65536:
                _KEYED.clear()
            found = _KEYED[(names, kind)] = _make_keyed(names, kind)
        return found
    return _make_keyed(names, kind)


def _make_keyed(names: Iterable[str], kind: Kind) -> tuple[tuple[str, ...], tuple[str, ...]]:
    seen: dict[str, str] = {}
    for n in names:
        seen.setdefault(key(n, kind), n)
    keys = tuple(sorted(seen))
    return tuple(map(seen.__getitem__, keys)), keys
