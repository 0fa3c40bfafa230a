"""Answer parsing (tasks.md 3.4) and the outcome of one reply.

MCQ rules, first that applies wins, on the reply stripped of whitespace, markdown markers and surrounding
quotes or brackets:

1. leading letter: starts with an upper-case A-D followed by the end, a newline or one of ``. ) : , ;``; or the
   whole reply is one lower-case a-d (optionally with one of those marks) — so "b" and "(c)" are letters but
   "a cup" and "A cup is ..." are not;
2. pattern: "answer: X", "answer is X", "option X", "best option is X" (keyword any case, X upper-case A-D,
   optionally bracketed); two patterns naming different letters -> ``ambiguous``;
3. option text: the reply minus a trailing period has the key of exactly one option, or is "X. text" of it;
4. else ``unparsed``. A lone letter is never searched for anywhere in the text.

``ambiguous`` counts as ``unparsed`` in outcomes (the parse kind is kept separately).
Proactive: the first word, lower-cased without punctuation, must be "yes" or "no".
"""
from __future__ import annotations

import re
from functools import lru_cache

from streamgaze.tasks.api import LETTERS, OPTION_COUNT
from streamgaze.tasks.names import key, word_list

_MD = re.compile(r"^[\s*_#>`~]+|[\s*_`~]+$")
_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "(": ")", "[": "]", "{": "}", "«": "»", "`": "`"}
_LEAD = re.compile(r"^\(?([A-D])(?:$|[\n\r.):,;])")
_LOWER_ALONE = re.compile(r"^\(?([a-d])[.):,;]?$")
_LETTER = r"[\(\[]?([A-D])[\)\]]?(?![A-Za-z0-9])"
_PATTERNS = [
    re.compile(r"(?i:\banswer)\s*:\s*" + _LETTER),
    re.compile(r"(?i:\banswer\s+is)\s+" + _LETTER),
    re.compile(r"(?i:\boption)\s+" + _LETTER),
    re.compile(r"(?i:\bbest\s+option\s+is)\s+" + _LETTER),
]
_X_TEXT = re.compile(r"^\(?([A-Da-d])[.)]\s*(.+)$", re.S)
_WORD = re.compile(r"[^\W_]+", re.U)


def strip_reply(text: str | None) -> str:
    """Whitespace, markdown markers and surrounding quotes or brackets off."""
    s = (text or "").strip()
    for _ in range(4):
        before = s
        s = _MD.sub("", s).strip()
        if len(s) >= 2 and _PAIRS.get(s[0]) == s[-1]:
            inner = s[1:-1].strip()
            # keep "(C)": a bracketed single letter is rule 1's business either way
            s = inner
        if s == before:
            break
    return s


def parse_mcq(text: str | None, options: list[str]) -> tuple[str | None, str]:
    """``(letter or None, kind)``; kind is ``letter``, ``pattern``, ``text``, ``ambiguous`` or ``unparsed``."""
    s = strip_reply(text)
    letters = LETTERS[: max(len(options), 1)] if options else LETTERS[:OPTION_COUNT]
    # 1. leading letter
    m = _LEAD.match(s)
    if m and m.group(1) in letters:
        return m.group(1), "letter"
    m = _LOWER_ALONE.match(s)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper(), "letter"
    # 2. patterns
    found = {mm.group(1) for p in _PATTERNS for mm in p.finditer(s)}
    found &= set(letters)
    if len(found) == 1:
        return found.pop(), "pattern"
    if len(found) > 1:
        return None, "ambiguous"
    # 3. option text
    if options:
        body = s[:-1] if s.endswith(".") else s
        keys = [key(o) for o in options]
        k = key(body)
        hits = [i for i, ok in enumerate(keys) if ok == k]
        if k and len(hits) == 1:
            return LETTERS[hits[0]], "text"
        m = _X_TEXT.match(body)
        if m:
            i = LETTERS.find(m.group(1).upper())
            if 0 <= i < len(options) and key(m.group(2)) == keys[i]:
                return LETTERS[i], "text"
    return None, "unparsed"


def parse_yes_no(text: str | None) -> tuple[str | None, str]:
    words = strip_reply(text).split()
    word = "".join(_WORD.findall(words[0].lower())) if words else ""
    if word in ("yes", "no"):
        return word, "word"
    return None, "unparsed"


@lru_cache(maxsize=1)
def _refusal_phrases() -> tuple[str, ...]:
    return tuple(p.lower() for p in word_list("refusal")["phrases"])


def is_refusal(text: str | None) -> bool:
    t = (text or "").lower().replace("’", "'").replace("‘", "'")
    return any(p in t for p in _refusal_phrases())


def judge(text: str | None, *, options: list[str], answer: str, proactive: bool) -> tuple[str | None, str, str]:
    """``(parsed, outcome, kind)`` of one reply; outcome in correct / wrong / unparsed / refused."""
    parsed, kind = parse_yes_no(text) if proactive else parse_mcq(text, options)
    if parsed is None:
        return None, ("refused" if is_refusal(text) else "unparsed"), kind
    return parsed, ("correct" if parsed == answer else "wrong"), kind
