"""Names: the key, singularisation rules and exceptions, synonyms, the conflict rule, word lists (tasks.md 1.3, 1.5)."""
import pytest

from streamgaze.tasks import names


@pytest.mark.parametrize(
    "word, singular",
    [
        ("knives", "knife"), ("leaves", "leaf"), ("feet", "foot"), ("people", "person"), ("shoes", "shoe"),
        ("cookies", "cookie"),  # irregulars first
        ("glasses", "glasses"), ("scissors", "scissors"), ("tongs", "tongs"), ("species", "species"),
        ("hummus", "hummus"),  # invariants
        ("cups", "cup"), ("pan", "pan"), ("lids", "lid"),  # <= 3 letters stay; 4+ lose the s
        ("berries", "berry"), ("potatoes", "potato"), ("matches", "match"), ("dishes", "dish"),
        ("dresses", "dress"), ("boxes", "box"), ("buzzes", "buzz"),
        ("glass", "glass"), ("cactus", "cactus"), ("tennis", "tennis"), ("bottles", "bottle"),
    ],
)
def test_singularise(word, singular):
    assert names.singularise(word) == singular


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("  Coffee_Cups. ", "object", "coffee cup"),
        ("Refrigerator", "object", "fridge"),
        ("counter tops", "object", "counter"),
        ("cell phone", "object", "cell phone"),
        ("Ｍｕｇｓ", "object", "mug"),  # NFKC
        ("Put Tomatoes in Bowls", "label", "put tomato in bowl"),
        ("Cuts tomatoes", "label", "cuts tomato"),  # the first word is the verb, kept as is
        ('"Dark Red"', "attribute", "dark red"),
    ],
)
def test_key(text, kind, expected):
    assert names.key(text, kind) == expected


@pytest.mark.parametrize(
    "a, b, kind, expected",
    [
        ("cup", "cups", "object", True),
        ("cup", "coffee cup", "object", True),
        ("cup", "cupboard", "object", False),  # whole words only
        ("fridge", "refrigerator", "object", True),
        ("red", "pink", "attribute", True),
        ("red", "dark red", "attribute", True),
        ("wood", "wooden", "attribute", True),
        ("red", "blue", "attribute", False),
        ("{a}>{b}>{c}", "{b}>{a}>{c}", "sequence", False),
        ("{a}>{b}>{c}", "{a}>{b}>{c}", "sequence", True),
    ],
)
def test_conflict(a, b, kind, expected):
    assert names.conflict(a, b, kind) is expected
    assert names.conflict(b, a, kind) is expected


@pytest.mark.parametrize(
    "name, list_name, expected",
    [
        ("left hand", "human", True), ("handle", "human", False), ("hand towel", "human", False),
        ("headphones", "human", False), ("refrigerator", "fixture", True), ("kitchen sink", "fixture", True),
        ("old gas stove", "fixture", True), ("table knife", "fixture", False), ("box", "vague", True),
        ("cereal box", "vague", False),
    ],
)
def test_word_lists(name, list_name, expected):
    assert names.in_list(name, list_name) is expected


def test_display_keeps_label_text_but_canonicalises_objects():
    assert names.display("Refrigerators", "object") == "fridge"
    assert names.display("Pour Water.", "label") == "pour water"


@pytest.mark.parametrize("kind", ["object", "attribute", "label", "sequence"])
def test_conflict_set_agrees_with_pairwise_conflict(kind):
    texts = ["cup", "coffee cup", "cups", "red", "dark red", "pink", "wood", "wooden", "mug", "kettle lid",
             "lid", "take cup", "take cups", "{a}>{b}", "{b}>{a}", "white", "silver", "light gray", "cupboard"]
    for i in range(len(texts)):
        accepted = texts[:i]
        for text in texts:
            assert names.ConflictSet(accepted, kind).conflicts(text) == any(
                names.conflict(text, other, kind) for other in accepted), (text, accepted)
