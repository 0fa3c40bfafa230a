"""The StreamGaze reference's scoring rules (its ``evaluate_results.py``), one short function per rule.

``streamgaze score R --scoring reference`` applies them to a run folder (`streamgaze.eval.score.score_run_reference`)
so our numbers can be set beside the paper's way of counting. The rules, exactly as the reference has them:

- **Letter** (`extract_letter`): the response upper-cased; the first standalone A-D (regex ``\\b([ABCD])\\b``), else
  the whole upper-cased, stripped string. The article "a" is a standalone letter once upper-cased: "a cup" reads
  as option A. This is the reference's behaviour and is kept.
- **Multiple choice** (`mcq_correct`): correct iff the response's letter equals the answer's letter (the answer
  passed through the same function).
- **Proactive** (`proactive_correct`): each test point whose expected ``type`` is not null is one trial; correct
  iff "YES" is a substring of the upper-cased response for type 1, "NO" for type 0. So "Yes, not yet" is right
  for both types and "Nope", "I do not know" or "None" read as no.
- **Missing** (`is_trial`): a question or test point without a prediction is left out of the denominator, not
  counted wrong. A row whose request failed (outcome ``error``, no response) counts as no prediction.
- **Task accuracy** (`task_accuracy`): correct / total; 0.0 when a task has no trial at all.
- **Average** (`average`): the unweighted mean of the task accuracies over the task files present.
"""
from __future__ import annotations

import re

LETTER = re.compile(r"\b([ABCD])\b")


def extract_letter(text) -> str:
    """The first standalone A-D of the upper-cased text, else the whole upper-cased, stripped text."""
    upper = ("" if text is None else str(text)).upper()
    m = LETTER.search(upper)
    return m.group(1) if m else upper.strip()


def has_letter(text) -> bool:
    """Whether the reference finds a standalone letter (else it compares the whole string: our ``unparsed``)."""
    return LETTER.search(("" if text is None else str(text)).upper()) is not None


def has_yes_or_no(text) -> bool:
    """Whether a proactive reply holds "YES" or "NO" at all (else it is right for neither type: our ``unparsed``)."""
    upper = ("" if text is None else str(text)).upper()
    return "YES" in upper or "NO" in upper


def mcq_correct(response, answer) -> bool:
    """A multiple-choice trial: both sides through `extract_letter`, then compared."""
    return extract_letter(response) == extract_letter(answer)


def proactive_correct(response, expected_type) -> bool:
    """A proactive trial: "YES" in the upper-cased response for type 1, "NO" for type 0 (substrings)."""
    upper = ("" if response is None else str(response)).upper()
    return ("YES" in upper) if int(expected_type) == 1 else ("NO" in upper)


def is_trial(has_prediction: bool, expected_type=0) -> bool:
    """A question counts only with a prediction; a proactive point also needs a non-null expected type."""
    return has_prediction and expected_type is not None


def task_accuracy(correct: int, total: int) -> float:
    """correct / total (0.0 without trials)."""
    return correct / total if total else 0.0


def average(accuracies) -> float:
    """The unweighted mean over the task files present (0.0 without any)."""
    accuracies = list(accuracies)
    return sum(accuracies) / len(accuracies) if accuracies else 0.0
