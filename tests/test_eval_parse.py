"""Answer parsing table (tasks.md 3.4): every rule, and the traps."""
from __future__ import annotations

import pytest

from streamgaze.eval.parse import judge, parse_mcq, parse_yes_no

OPTS = ["cup", "knife", "cutting board", "red bowl"]


@pytest.mark.parametrize(
    "reply, letter, kind",
    [
        # 1. leading letter
        ("B", "B", "letter"),
        ("B.", "B", "letter"),
        ("(C)", "C", "letter"),
        ("C)", "C", "letter"),
        ("D: red bowl", "D", "letter"),
        ("A, because the cup", "A", "letter"),
        ("b", "B", "letter"),
        ("  **B**  ", "B", "letter"),
        ('"C"', "C", "letter"),
        ("[A]", "A", "letter"),
        ("A\nThe cup is on the left.", "A", "letter"),
        ("`d`", "D", "letter"),
        # traps: the article "a"/"A" is never option A
        ("A cup is on the table.", None, "unparsed"),
        ("a cup", None, "unparsed"),
        ("E.", None, "unparsed"),
        # 2. patterns
        ("The answer is C.", "C", "pattern"),
        ("Answer: (B)", "B", "pattern"),
        ("answer: D", "D", "pattern"),
        ("I think option B fits best.", "B", "pattern"),
        ("The best option is [A]", "A", "pattern"),
        ("Looking closely, the best option is D", "D", "pattern"),
        ("The answer is B, but option C could also be right.", None, "ambiguous"),
        ("Answer: C. The answer is C.", "C", "pattern"),
        ("the answer is a cup", None, "unparsed"),  # X must be an upper-case letter
        # 3. option text
        ("knife", "B", "text"),
        ("Cutting board.", "C", "text"),
        ("cups", "A", "text"),  # the key singularises
        ("b. knife", "B", "text"),
        ("Red Bowl", "D", "text"),
        # 4. otherwise unparsed
        ("I do not know", None, "unparsed"),
        ("It is something on the table", None, "unparsed"),
        ("", None, "unparsed"),
        (None, None, "unparsed"),
    ],
)
def test_mcq_table(reply, letter, kind):
    assert parse_mcq(reply, OPTS) == (letter, kind)


@pytest.mark.parametrize(
    "reply, parsed",
    [
        ("Yes", "yes"), ("yes.", "yes"), ("No", "no"), ("NO, it was not.", "no"), ("**Yes**", "yes"),
        ('"No"', "no"), ("Yes!", "yes"),
        ("nope", None), ("I do not know", None), ("Not yet", None), ("", None), ("yesterday", None),
    ],
)
def test_yes_no_table(reply, parsed):
    assert parse_yes_no(reply)[0] == parsed


def test_outcomes():
    assert judge("B", options=OPTS, answer="B", proactive=False)[:2] == ("B", "correct")
    assert judge("C", options=OPTS, answer="B", proactive=False)[:2] == ("C", "wrong")
    assert judge("I'm sorry, I cannot see the video.", options=OPTS, answer="B", proactive=False)[:2] == (None, "refused")
    assert judge("I can’t determine that", options=OPTS, answer="B", proactive=False)[:2] == (None, "refused")
    assert judge("I do not know", options=OPTS, answer="B", proactive=False)[:2] == (None, "unparsed")
    # ambiguous counts as unparsed
    assert judge("answer is B or option C", options=OPTS, answer="B", proactive=False) == (None, "unparsed", "ambiguous")
    # a refusal that still names a letter first is parsed, not refused
    assert judge("B. Sorry if unclear", options=OPTS, answer="B", proactive=False)[:2] == ("B", "correct")
    assert judge("No", options=[], answer="no", proactive=True)[:2] == ("no", "correct")
    assert judge("I do not know", options=[], answer="no", proactive=True)[:2] == (None, "unparsed")
    assert judge("Sorry, unable to tell", options=[], answer="no", proactive=True)[:2] == (None, "refused")
