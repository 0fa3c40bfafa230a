"""`streamgaze audit questions`: a miniature release made from the toy kitchen (generate, then export to the released
layout), audited against a store that holds only what the release's metadata gives (the episode CSV imported with
`ingest streamgaze-metadata`, the actions with `ingest actions-csv`). Clean files give no fault; each planted fault
is found with its reason and nothing else is flagged; what the metadata cannot settle is unverifiable; the
regenerated benchmark audits clean; bad input is one line, exit 2."""
from __future__ import annotations

import copy
import csv
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamgaze.cli import cli
from streamgaze.eval.audit_questions import audit_questions
from streamgaze.store import open_store
from streamgaze.tasks.export import export_streamgaze_json
from streamgaze.tasks.generate import run_generate
from streamgaze.tasks.testing import TOY_ACTIONS, TOY_EPISODES, TOY_VIDEO, toy_store, write_timeline

OIH = "present_object_identification_hard"
SR = "past_scene_recall"
OTP = "past_object_transition_prediction"
NFI = "past_non_fixated_object_identification"
GTA = "proactive_gaze_triggered_alert"
OAR = "present_object_attribute_recognition"
OIE = "present_object_identification_easy"


def _run(*args) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """``release``: the released layout made from the toy store (with attributes); ``store``: the metadata only."""
    root = tmp_path_factory.mktemp("audit")
    toy_store(root / "toy.duckdb").close()
    run_generate(root / "toy.duckdb", root / "generated")
    export_streamgaze_json(root / "generated", root / "release", store=root / "toy.duckdb")
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["video_name", "episode_start_time", "episode_end_time", "duration", "representative_object",
                    "other_objects_in_cropped_area", "other_objects_outside_fov"])
        for _eid, t0, t1, gazed, fov, outside in TOY_EPISODES:
            w.writerow([f"videos/{TOY_VIDEO}.mp4", t0, t1, t1 - t0,
                        repr({"object_identity": gazed, "detailed_caption": f"a {gazed} on the counter"}),
                        json.dumps([{"object_identity": n} for n in fov]), json.dumps(outside)])
    with open(root / "actions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["video_id", "t_start", "t_end", "label"])
        w.writerows([TOY_VIDEO, *a] for a in TOY_ACTIONS)
    store = root / "metadata.duckdb"
    assert _run("ingest", "streamgaze-metadata", root / "metadata.csv", "--store", store)[0] == 0
    assert _run("ingest", "actions-csv", root / "actions.csv", "--store", store)[0] == 0
    return {"root": root, "release": root / "release", "store": store}


def _planted(world, tmp_path, task: str, edit) -> Path:
    """A copy of the release with ``edit(items)`` applied to one task's file."""
    qa = tmp_path / "qa"
    shutil.copytree(world["release"], qa)
    path = qa / f"{task}.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    edit(items)
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    return qa


def _flagged(result) -> list[tuple]:
    return [(f.task, f.item, f.question, f.reasons) for f in result.faulty()]


def test_clean_release_has_no_fault_and_attributes_without_data_are_unverifiable(world):
    result = audit_questions(world["release"], world["store"])
    summary = result.summary()
    assert summary["total"]["faulty"] == 0
    assert len(summary["tasks"]) == 10 and summary["total"]["questions"] == sum(
        len(json.loads(p.read_text())) for p in world["release"].glob("*.json"))
    # The metadata CSV holds captions, no attribute values: every OAR question is unverifiable, nothing else is.
    oar = summary["tasks"][OAR]
    assert oar["questions"] > 0 and oar["unverifiable"] == oar["questions"]
    assert oar["unverifiable_reasons"] == {"no_attributes": oar["questions"]}
    assert summary["total"]["unverifiable"] == oar["questions"]
    assert all(f.candidate is not None for f in result.findings if f.task != OAR)


def _swap_answer(items):
    q = items[0]["questions"][0]
    q["answer"] = "A" if q["answer"] != "A" else "B"


def _same_object_twice(items):
    q = items[0]["questions"][0]
    k = "ABCD".index(q["answer"])
    answer = q["options"][k][3:]
    other = (k + 1) % 4
    q["options"][other] = f"{'ABCD'[other]}. the {answer}"


def _future_distractor(items):  # SR at 00:16: the teabag is first seen at 110 s
    q = items[0]["questions"][0]
    k = "ABCD".index(q["answer"])
    other = (k + 1) % 4
    q["options"][other] = f"{'ABCD'[other]}. teabag"


def _asked_before_the_transition(items):  # OTP e2>e3: the answer episode ends at 23 s; asked at 21 s
    assert items[1]["questions"][0]["time_stamp"] == "00:23"
    items[1]["questions"][0]["time_stamp"] = "00:21"


def _asked_long_after(items):  # OI-H at e1 (4-7 s) asked at 75 s: the present clip is [15, 75]
    assert items[0]["questions"][0]["time_stamp"] == "00:05"
    items[0]["questions"][0]["time_stamp"] = "01:15"


def _flip_point(items):
    items[0]["questions"][0]["test_info"][1]["type"] ^= 1


def _valid_answer_as_distractor(items):  # NFI at 23 s: sink was never in a FOV either
    q = items[0]["questions"][0]
    k = "ABCD".index(q["answer"])
    assert q["options"][k] == "B. kettle"
    q["options"][0] = "A. sink"


@pytest.mark.parametrize("task, edit, reason, where", [
    (OIH, _swap_answer, "wrong_answer", (0, 0)),
    (OIH, _same_object_twice, "options_conflict", (0, 0)),
    (SR, _future_distractor, "after_question_time", (0, 0)),
    (OTP, _asked_before_the_transition, "after_question_time", (1, 0)),
    (OIH, _asked_long_after, "evidence_outside_clip", (0, 0)),
    (GTA, _flip_point, "wrong_test_point_type", (0, 0)),
    (NFI, _valid_answer_as_distractor, "distractor_correct", (0, 0)),
])
def test_each_planted_fault_is_found_with_its_reason_and_nothing_else(world, tmp_path, task, edit, reason, where):
    qa = _planted(world, tmp_path, task, edit)
    result = audit_questions(qa, world["store"])
    assert _flagged(result) == [(task, *where, [reason])]
    assert result.summary()["tasks"][task]["reasons"] == {reason: 1}


def test_faults_file_and_positions_in_an_item_with_two_questions(world, tmp_path):
    def edit(items):
        second = copy.deepcopy(items[1]["questions"][0])
        _swap_answer([{"questions": [second]}])
        items[1]["questions"].append(second)

    qa = _planted(world, tmp_path, OIH, edit)
    code, out = _run("audit", "questions", qa, "--store", world["store"], "--out", tmp_path / "audit")
    assert code == 0, out  # faults are findings, not errors
    assert "faults.jsonl" in out.splitlines()[-1]
    lines = [json.loads(x) for x in (tmp_path / "audit" / "faults.jsonl").read_text().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert (line["task"], line["item"], line["question"], line["reasons"]) == (OIH, 1, 1, ["wrong_answer"])
    assert line["evidence"]["video_id"] == TOY_VIDEO and line["evidence"]["wrong_answer"]["metadata_answer"] == "tomato"


def test_a_video_the_store_lacks_is_unverifiable_not_a_fault(world, tmp_path):
    def edit(items):
        items[0]["video_path"] = "/nowhere/another_video.mp4"

    qa = _planted(world, tmp_path, OIE, edit)
    code, out = _run("audit", "questions", qa, "--store", world["store"], "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["total"]["faulty"] == 0
    assert summary["tasks"][OIE]["unverifiable_reasons"] == {"video_not_in_store": 1}


def test_regenerate_writes_a_benchmark_the_audit_finds_clean(world, tmp_path):
    out = tmp_path / "fixed"
    code, text = _run("audit", "questions", world["release"], "--store", world["store"], "--regenerate", out, "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["regenerated"]["mapped"] > 0
    clean = audit_questions(out / "qa", world["store"]).summary()["total"]
    assert clean["questions"] > 0 and clean["faulty"] == 0 and clean["unverifiable"] == 0
    mapping = [json.loads(x) for x in (out / "mapping.jsonl").read_text().splitlines()]
    released = {p.stem: json.loads(p.read_text()) for p in world["release"].glob("*.json")}
    for m in mapping:  # same task, same video, same time
        old = released[m["task"]][m["item"]]
        new = json.loads((out / "qa" / f"{m['task']}.json").read_text())[m["new_item"]]
        assert Path(old["video_path"]).stem == Path(new["video_path"]).stem == TOY_VIDEO
        assert old["questions"][m["question"]]["time_stamp"] == new["questions"][0]["time_stamp"]


@pytest.mark.parametrize("case", ["missing_qa", "not_a_list", "no_store", "regenerate_into_a_file"])
def test_bad_input_is_one_line_exit_2(world, tmp_path, case):
    qa, store = world["release"], world["store"]
    extra = []
    if case == "regenerate_into_a_file":
        (tmp_path / "taken").write_text("x")
        extra = ["--out", tmp_path / "audit", "--regenerate", tmp_path / "taken"]
    if case == "missing_qa":
        qa = tmp_path / "nope"
    elif case == "not_a_list":
        qa = tmp_path / "qa"
        qa.mkdir()
        (qa / f"{OIH}.json").write_text('{"questions": []}', encoding="utf-8")
    else:
        store = tmp_path / "missing.duckdb"
    code, out = _run("audit", "questions", qa, "--store", store, *extra)
    assert code == 2
    assert len(out.strip().splitlines()) == 1 and out.startswith("Error: ")
    assert not store.exists() or store == world["store"]
    assert not (tmp_path / "audit").exists()  # nothing half-written


def test_labels_and_sequences_worded_otherwise_are_unverifiable_not_wrong(world, tmp_path):
    def reworded(items):  # the reference's LLM-reworded action options: nothing to compare with the metadata's labels
        q = items[0]["questions"][0]
        q["options"] = [f"{o[:3]}The wearer will probably {o[3:]} next" for o in q["options"]]

    qa = _planted(world, tmp_path, "present_future_action_prediction", reworded)
    summary = audit_questions(qa, world["store"]).summary()
    assert summary["total"]["faulty"] == 0
    assert summary["tasks"]["present_future_action_prediction"]["unverifiable_reasons"] == {"answer_wording": 1}


VOCAB = ["apple", "bowl", "cup", "coffee cup", "kettle", "knife", "mug", "pan", "plate", "sink", "spoon", "sponge",
         "teabag", "toaster", "tomato", "refrigerator", "fridge", "left hand"]
VERBS = ["take", "cut", "wash", "fill", "open", "pour"]
COLORS = ["red", "pink", "blue", "white", "silver", "black"]


@st.composite
def kitchens(draw):
    """A random timeline as write_timeline takes it: episodes (some without a gazed name) and actions."""
    episodes, t = [], 0.0
    for i in range(draw(st.integers(3, 14))):
        t0 = round(t + draw(st.floats(0.2, 25.0)), 3)
        t1 = round(t0 + draw(st.floats(0.5, 8.0)), 3)
        t = t1
        gazed = draw(st.one_of(st.none(), st.sampled_from(VOCAB), st.sampled_from(VOCAB)))
        fov = draw(st.lists(st.sampled_from(VOCAB), max_size=3, unique=True))
        outside = draw(st.lists(st.sampled_from(VOCAB), max_size=5, unique=True))
        episodes.append((f"e{i + 1}", t0, t1, gazed, fov, outside))
    actions, a = [], 0.0
    while a < t + 30:
        a0 = round(a + draw(st.floats(0.5, 20.0)), 3)
        a = round(a0 + draw(st.floats(1.0, 10.0)), 3)
        actions.append((a0, a, f"{draw(st.sampled_from(VERBS))} {draw(st.sampled_from(VOCAB[:12]))}"))
    return episodes, actions, round(t + draw(st.floats(0.0, 200.0)), 3)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kitchens())
def test_property_a_generated_and_exported_benchmark_audits_clean(kitchen):
    """Whatever the timeline, the engine's own questions, exported to the released layout, are found correct and
    verifiable against the store they came from (the audit and the generator read the same rules)."""
    episodes, actions, duration = kitchen
    attributes = {n: {"color": COLORS[len(n) % len(COLORS)], "material": "metal" if len(n) % 2 else "wood"} for n in VOCAB}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = open_store(tmp / "s.duckdb")
        write_timeline(store, "kitchen", episodes, actions, attributes, duration_s=duration)
        store.close()
        run_generate(tmp / "s.duckdb", tmp / "generated")
        export_streamgaze_json(tmp / "generated", tmp / "release", store=tmp / "s.duckdb")
        total = audit_questions(tmp / "release", tmp / "s.duckdb").summary()["total"]
    assert total["faulty"] == 0 and total["unverifiable"] == 0, total


def test_an_alert_target_the_task_skips_is_unverifiable_with_the_tasks_reason(world, tmp_path):
    def edit(items):  # the knife is gazed in the first episode, at the question time: GTA's rules skip it
        q = items[0]["questions"][0]
        q["target_object"] = "knife"
        q["question"] = q["question"].replace("bowl", "knife")

    qa = _planted(world, tmp_path, GTA, edit)
    summary = audit_questions(qa, world["store"]).summary()
    assert summary["total"]["faulty"] == 0
    assert summary["tasks"][GTA]["unverifiable_reasons"] == {"gazed_at_question": 1}
