"""Validator plugins: keep or drop+reason by whole word and near-duplicate options; never edit; counted as skips."""
import json
import textwrap

import pytest
from click.testing import CliRunner

from streamgaze import load_task_specs
from streamgaze.cli import cli
from streamgaze.tasks.generate import run_generate
from streamgaze.errors import SpecError
from streamgaze.plugins.manager import registry
from streamgaze.store import open_store
from streamgaze.tasks.testing import write_timeline


def item(options, answer_text=None, target=None):
    return {"options": list(options), "answer_text": answer_text or (options[0] if options else ""),
            "evidence": {"target": target} if target else {}}


@pytest.fixture(scope="module")
def v():
    return {name: e.obj for name, e in registry("validators").items()}


def test_the_builtin_validators_are_registered(v):
    assert {"human_words", "generic_words", "vague_words", "near_duplicate_options"} <= set(v)


@pytest.mark.parametrize(
    "name, options, target, expected",
    [
        pytest.param("human_words", ["mug", "left hand", "plate", "bowl"], None, "human_related", id="human_head_word"),
        pytest.param("human_words", ["mug", "hand towel", "plate", "bowl"], None, "human_related", id="human_first_word"),
        pytest.param("human_words", ["mug", "Hands", "plate", "bowl"], None, "human_related", id="human_plural"),
        pytest.param("human_words", ["mug", "handle", "headphones", "bowl"], None, None, id="handle_is_not_hand"),
        pytest.param("human_words", [], "person", "human_related", id="proactive_target"),
        pytest.param("generic_words", ["mug", "small object", "plate", "bowl"], None, "generic_word", id="generic"),
        pytest.param("generic_words", ["mug", "objective lens", "plate", "bowl"], None, None, id="not_a_substring"),
        pytest.param("vague_words", ["mug", "plastic bag", "plate", "bowl"], None, "vague_word", id="vague"),
        pytest.param("vague_words", ["mug", "bagel", "plate", "bowl"], None, None, id="bagel_is_not_bag"),
        pytest.param("near_duplicate_options", ["teapot", "tea pot", "plate", "bowl"], None, "near_duplicate_options", id="spacing"),
        pytest.param("near_duplicate_options", ["cutting-board", "cutting board", "plate", "bowl"], None, "near_duplicate_options", id="hyphen"),
        pytest.param("near_duplicate_options", ["kettle", "kettel", "plate", "bowl"], None, "near_duplicate_options", id="misspelling"),
        pytest.param("near_duplicate_options", ["mug", "jug", "plate", "bowl"], None, None, id="short_words_differ"),
        pytest.param("near_duplicate_options", ["knife", "fork", "spoon", "plate"], None, None, id="clean"),
    ],
)
def test_keep_or_drop_with_reason(v, name, options, target, expected):
    q = item(options, target=target)
    before = json.dumps(q, sort_keys=True)
    assert v[name](q) == expected
    assert json.dumps(q, sort_keys=True) == before  # never edits


SPEC = """\
id: checked_oih
family: present
ability: object_grounding
template: checked_oih.j2
logic: gazed_among_visible
ask_at: present
validators: [human_words, near_duplicate_options]
"""

EPISODES = [
    ("e1", 4.0, 7.0, "mug", [], ["hand towel", "plate", "sponge"]),    # a distractor names a body part
    ("e2", 10.0, 13.0, "kettle", [], ["bowl", "plate", "sponge"]),     # clean
    ("e3", 20.0, 23.0, "teapot", [], ["tea pot", "toaster", "sink"]),  # near-duplicate options
]


def test_a_dropped_question_is_counted_under_its_reason(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "checked_oih.yaml").write_text(SPEC)
    (tmp_path / "specs" / "checked_oih.j2").write_text("What is the user looking at?")
    with open_store(tmp_path / "s.duckdb") as store:
        write_timeline(store, "v1", EPISODES)
    report = run_generate(tmp_path / "s.duckdb", tmp_path / "qa", only=["checked_oih"], extra_specs=[tmp_path / "specs"])
    task = report["tasks"]["checked_oih"]
    assert task["questions"] == 1
    assert task["skipped"] == {"human_related": 1, "near_duplicate_options": 1}
    assert task["params"]["validators"] == ["human_words", "near_duplicate_options"]
    on_disk = json.loads((tmp_path / "qa" / "generation_report.json").read_text())
    assert on_disk["tasks"]["checked_oih"]["skipped"] == task["skipped"]
    with open_store(tmp_path / "s.duckdb", read_only=True) as store:
        rows = store.rows("SELECT video_id, reason, n FROM qa_skips WHERE task = 'checked_oih' ORDER BY reason")
        kept = store.rows("SELECT item FROM qa_items WHERE task = 'checked_oih'")
    assert rows == [{"video_id": "v1", "reason": "human_related", "n": 1},
                    {"video_id": "v1", "reason": "near_duplicate_options", "n": 1}]
    assert [json.loads(r["item"])["answer_text"] for r in kept] == ["kettle"]


def test_an_unknown_validator_is_a_spec_error(tmp_path):
    (tmp_path / "checked_oih.yaml").write_text(SPEC.replace("near_duplicate_options", "no_such_check"))
    (tmp_path / "checked_oih.j2").write_text("What?")
    with pytest.raises(SpecError, match=r"checked_oih.yaml: validators.1: no validator 'no_such_check' is registered; available: "):
        load_task_specs(extra_paths=[tmp_path])
    result = CliRunner().invoke(cli, ["generate", "--store", str(tmp_path / "none.duckdb"), "--specs", str(tmp_path)])
    assert result.exit_code == 2 and "no_such_check" in result.output


def test_near_duplicate_bounds_never_change_the_ratio_verdict():
    """The cheap bounds before `SequenceMatcher.ratio` only skip pairs the ratio would reject."""
    import random
    from difflib import SequenceMatcher

    from streamgaze_builtin.validators import _near_duplicate, _one_transposition

    rng = random.Random(7)
    for _ in range(3000):
        a = "".join(rng.choice("abcde") for _ in range(rng.randint(5, 12)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):
            b.insert(rng.randrange(len(b) + 1), rng.choice("abcde")) if rng.random() < 0.5 else b.pop(rng.randrange(len(b)))
        b = "".join(rng.sample(b, len(b)) if rng.random() < 0.3 else b)
        for ratio in (0.7, 0.88):
            plain = a == b or (min(len(a), len(b)) >= 5 and (
                _one_transposition(a, b) or SequenceMatcher(None, a, b, autojunk=False).ratio() >= ratio))
            assert _near_duplicate.__wrapped__(a, b, ratio, 5) == plain, (a, b, ratio)


def test_a_validator_that_reads_only_options_decides_the_same_without_the_text(tmp_path):
    """A validator whose `reads` avoids the question text and evidence is shown the line without them (so capped
    candidates need no rendering); its verdicts, the questions and every skip count are as with the whole line."""
    from streamgaze.tasks.generate import run_task_on_video
    from streamgaze.tasks.timeline import load_timelines
    from streamgaze.tasks.testing import toy_store

    (task,) = load_task_specs(only=["past_non_fixated_object_identification"])
    with toy_store(tmp_path / "toy.duckdb") as store:
        (video,) = load_timelines(store)
    seen: dict[str, list[set]] = {"options_only": [], "whole": []}

    class Check:
        def __init__(self, name):
            self.name = name

        def __call__(self, line):
            seen[self.name].append(set(line))
            return "has_fridge" if "fridge" in line["options"] else None

    options_only = Check("options_only")
    options_only.reads = frozenset({"options"})
    lean = run_task_on_video(task, video, 0, [options_only])
    whole = run_task_on_video(task, video, 0, [Check("whole")])
    assert lean == whole and whole[1]["has_fridge"] >= 1
    assert len(seen["options_only"]) == len(seen["whole"]) >= 3
    assert all(not keys & {"question", "evidence"} for keys in seen["options_only"])
    assert all({"question", "evidence"} <= keys for keys in seen["whole"])
