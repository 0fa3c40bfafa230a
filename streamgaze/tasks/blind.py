"""Blind baselines: answers chosen without the video, to measure how much of a task the text alone gives away.

- ``prior``: the option whose text is most often the right answer among the *other videos'* questions of the
  same task (leave-one-video-out, so a question never votes for itself, nor do its siblings from the same
  video); ties go to the text seen less often as a wrong option, then to a stable hash. Proactive test points:
  the answer most often expected among the other videos' test points of the task (the majority answer, whose
  share is the proactive chance level).
- ``longest`` / ``shortest``: the option with the most / fewest characters. Proactive points have no options:
  these two answer as ``prior`` does there.

Every remaining tie is broken by a hash of the question id and the candidate text (sha256), never by position,
so the choice is deterministic and carries no letter bias. The answers are computed from the question set
given (the files being evaluated); `streamgaze_builtin.models` wraps them as ``--model prior|longest|shortest``
and the generation report and ``score`` use them to flag tasks answerable from the text.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from streamgaze.tasks.api import LETTERS

BLIND_BASELINES = ("prior", "longest", "shortest")


def _norm(text) -> str:
    return " ".join(str(text).lower().split())


def _tiebreak(qid: str, text: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{qid}\x00{text}".encode()).digest()[:8], "big")


def _answer_text(q: dict) -> str | None:
    letter = q.get("answer") or ""
    k = LETTERS.find(letter) if len(letter) == 1 else -1
    options = q.get("options") or []
    return _norm(options[k]) if 0 <= k < len(options) else None


class _Tally:
    """Counts over all videos and per video, so that "every video but v" is a subtraction."""

    def __init__(self):
        self.total: Counter = Counter()
        self.by_video: dict[str, Counter] = defaultdict(Counter)

    def add(self, video: str, key, n: int = 1) -> None:
        self.total[key] += n
        self.by_video[video][key] += n

    def without(self, video: str, key) -> int:
        return self.total[key] - self.by_video[video][key]


def _mcq_choices(qs: list[dict], baseline: str) -> dict[tuple[str, int], str]:
    right, wrong = _Tally(), _Tally()
    if baseline == "prior":
        for q in qs:
            answer = _answer_text(q)
            for text in map(_norm, q.get("options") or []):
                (right if text == answer else wrong).add(q["video_id"], text)
    out = {}
    for q in qs:
        options = [_norm(o) for o in q.get("options") or []]
        if not options:
            continue
        v = q["video_id"]
        if baseline == "prior":
            keys = [(right.without(v, t), -wrong.without(v, t)) for t in options]
        elif baseline == "longest":
            keys = [(len(t),) for t in options]
        else:
            keys = [(-len(t),) for t in options]
        best = max(keys)
        tied = [i for i, k in enumerate(keys) if k == best]
        pick = tied[0] if len(tied) == 1 else max(tied, key=lambda i: _tiebreak(q["id"], options[i]))
        out[(q["id"], -1)] = LETTERS[pick]
    return out


def _proactive_choices(qs: list[dict]) -> dict[tuple[str, int], str]:
    expected = _Tally()
    for q in qs:
        for p in q["test_points"]:
            expected.add(q["video_id"], p["expected"])
    out = {}
    for q in qs:
        votes = {a: expected.without(q["video_id"], a) for a in ("yes", "no")}
        for k in range(len(q["test_points"])):
            out[(q["id"], k)] = max(("yes", "no"), key=lambda a: (votes[a], _tiebreak(f"{q['id']}#{k}", a)))
    return out


def blind_answers(questions: list[dict], baseline: str) -> dict[tuple[str, int], str]:
    """``{(question id, point index): answer}`` for every item of ``questions`` (any tasks): a letter for a
    multiple-choice question (point index -1), ``"yes"``/``"no"`` for a proactive test point."""
    if baseline not in BLIND_BASELINES:
        raise ValueError(f"unknown blind baseline {baseline!r} (one of: {', '.join(BLIND_BASELINES)})")
    by_task: dict[str, list[dict]] = defaultdict(list)
    for q in questions:
        by_task[q["task"]].append(q)
    out: dict[tuple[str, int], str] = {}
    for task, qs in sorted(by_task.items()):
        mcq = [q for q in qs if not q.get("test_points")]
        proactive = [q for q in qs if q.get("test_points")]
        out.update(_mcq_choices(mcq, baseline))
        out.update(_proactive_choices(proactive))
    return out


def blind_outcomes(questions: list[dict], baseline: str) -> list[tuple[str, str, bool]]:
    """``(question id, video id, right)`` per item (a question; a proactive test point) under ``baseline``."""
    answers = blind_answers(questions, baseline)
    out = []
    for q in questions:
        if q.get("test_points"):
            out += [(q["id"], q["video_id"], answers.get((q["id"], k)) == p["expected"])
                    for k, p in enumerate(q["test_points"])]
        elif q.get("options"):
            out.append((q["id"], q["video_id"], answers.get((q["id"], -1)) == q.get("answer")))
    return out


def blind_accuracies(questions: list[dict]) -> dict[str, float | None]:
    """Each blind baseline's accuracy over the items of ``questions`` (one task's, for the generation report)."""
    out = {}
    for b in BLIND_BASELINES:
        oks = [ok for _, _, ok in blind_outcomes(questions, b)]
        out[b] = round(sum(oks) / len(oks), 4) if oks else None
    return out
