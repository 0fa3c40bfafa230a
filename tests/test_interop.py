"""StreamGaze interoperability (tasks.md 4.1, 4.3): the metadata CSV import and the released-JSON export."""
import csv
import json
import math
import os

import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.tasks.generate import run_generate
from streamgaze.tasks.timeline import load_timelines
from streamgaze.tasks.export import expected_at

#: task id -> (task_type, required_ability): the values the released StreamGaze files carry.
TASK_TYPES = {
    "past_non_fixated_object_identification": ("Scanpath_Never_Gazed", "scanpath_reasoning"),
    "past_object_transition_prediction": ("Scanpath_Next_After_Group", "scanpath_reasoning"),
    "past_gaze_sequence_matching": ("Scanpath_Transition_Pattern", "temporal_reasoning"),
    "past_scene_recall": ("Scene_Reconstruction", "episodic_memory"),
    "present_object_identification_easy": ("Object_Identification", "object_grounding"),
    "present_object_identification_hard": ("Object_Identification", "object_grounding"),
    "present_object_attribute_recognition": ("Object_Attribute", "object_grounding"),
    "present_future_action_prediction": ("Future_Action_Prediction", "predictive_reasoning"),
    "proactive_gaze_triggered_alert": ("Object_Remind_Easy", "object_tracking"),
    "proactive_object_appearance_alert": ("Object_Remind_Hard", "object_tracking"),
}
from streamgaze.store import open_store
from streamgaze.tasks.testing import toy_store, write_timeline

# ---------------------------------------------------------------------------------------------------------
# 4.1 streamgaze-metadata

HEADER = ["video_name", "episode_start_time", "episode_end_time", "duration", "representative_object",
          "other_objects_in_cropped_area", "other_objects_outside_fov"]
GOOD_ROWS = [
    # JSON, second episode of v1 given first (ids follow t_start)
    ["clips/v1.mp4", "20.0", "23.0", "3.0", json.dumps({"object_identity": "Bowl", "detailed_caption": "a pink bowl"}),
     json.dumps([{"object_identity": "spoon"}]), json.dumps(["kettle", "sink"])],
    # Python-literal dicts with single quotes (JSON after ' -> " also accepts them)
    ["clips/v1.mp4", "4.0", "7.0", "3.0", "{'object_identity': 'knife', 'detailed_caption': 'a knife'}",
     "[{'object_identity': 'cutting board'}]", "['fridge']"],
    # a literal only Python reads (a tuple, True) and empty / NaN cells
    ["v2.mp4", "1.5", "2.5", "1.0", "{'object_identity': \"chef's knife\", 'visible': True}", "nan", "[]"],
    ["v2.mp4", "5.0", "9.0", "4.5", "'mug'", "", "('plate', 'tray')"],
]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def ingest(store, csv_path):
    return CliRunner().invoke(cli, ["ingest", "streamgaze-metadata", str(csv_path), "--store", str(store)])


def test_metadata_csv_becomes_episodes_and_objects(tmp_path):
    res = ingest(tmp_path / "s.duckdb", write_csv(tmp_path / "meta.csv", GOOD_ROWS))
    assert res.exit_code == 0, res.output
    assert "2 videos, 4 episodes" in res.output and "1 rows have a duration" in res.output
    with open_store(tmp_path / "s.duckdb", read_only=True) as store:
        eps = store.rows("SELECT video_id, episode_id, t_start, t_end FROM episodes ORDER BY video_id, episode_id")
        objs = store.rows("SELECT video_id, episode_id, name, role, attributes FROM objects ORDER BY video_id, episode_id, role, name")
        timelines = {t.video_id: t for t in load_timelines(store)}
    assert [(e["video_id"], e["episode_id"], e["t_start"]) for e in eps] == [
        ("v1", "e1", 4.0), ("v1", "e2", 20.0), ("v2", "e1", 1.5), ("v2", "e2", 5.0)]
    assert {"video_id": "v1", "episode_id": "e2", "name": "Bowl", "role": "gazed",
            "attributes": '{"caption": "a pink bowl"}'} in objs  # stored as written
    assert [(o["name"], o["role"]) for o in objs if o["video_id"] == "v2"] == [
        ("chef's knife", "gazed"), ("mug", "gazed"), ("plate", "outside"), ("tray", "outside")]
    v1 = timelines["v1"]
    assert [(e.gazed, e.fov, e.outside) for e in v1.episodes] == [
        ("knife", ("cutting board",), ("fridge",)), ("bowl", ("spoon",), ("kettle", "sink"))]


@pytest.mark.parametrize(
    "row, message",
    [
        pytest.param(["v1.mp4", "4.0", "7.0", "3", "{'object_identity': 'knife'", "", ""],
                     "bad.csv: row 3: column 'representative_object': no parser accepts this cell", id="unparsable_cell"),
        pytest.param(["v1.mp4", "4.0", "7.0", "3", "__import__('os').system('echo pwned')", "", ""],
                     "bad.csv: row 3: column 'representative_object': no parser accepts this cell", id="code_is_never_run"),
        pytest.param(["v1.mp4", "", "7.0", "3", "knife", "", ""],
                     "bad.csv: row 3: column 'episode_start_time': time is missing or not a number", id="missing_time"),
        pytest.param(["v1.mp4", "9.0", "7.0", "3", "knife", "", ""],
                     "bad.csv: row 3: column 'episode_end_time': episode ends (7.0) before it starts (9.0)", id="end_before_start"),
        pytest.param(["v1.mp4", "4.0", "7.0", "3", "{'name': 'knife'}", "", ""],
                     "bad.csv: row 3: column 'representative_object': an object has no 'object_identity'", id="no_identity"),
    ],
)
def test_a_malformed_row_is_one_line_exit_2_and_the_store_is_untouched(tmp_path, row, message):
    store = tmp_path / "s.duckdb"
    assert ingest(store, write_csv(tmp_path / "first.csv", GOOD_ROWS[:1])).exit_code == 0
    before = store.read_bytes()
    res = ingest(store, write_csv(tmp_path / "bad.csv", [GOOD_ROWS[1], row]))
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.output
    assert store.read_bytes() == before
    assert "pwned" not in res.output


# ---------------------------------------------------------------------------------------------------------
# 4.3 export, read back with the reference evaluator's rules


def ref_parse_time(text: str) -> int:
    """The reference evaluator's timestamp parser: MM:SS or HH:MM:SS (ints), else a number."""
    parts = text.split(":")
    if len(parts) == 2:
        return int(parts[0]) * 60 + int(parts[1])
    if len(parts) == 3:
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
    return float(text)


def ref_video_file(item: dict, video_root) -> str:
    """The reference's lookup: the item's ``video_path`` if it exists, else its base name under the video root."""
    path = item["video_path"]  # KeyError for the reference's old `video` key
    return path if os.path.exists(path) else os.path.join(video_root, os.path.basename(path))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    store = toy_store(root / "store.duckdb")
    # a second video with fractional times, so whole-second rounding matters
    eps = [("e1", 3.4, 6.6, "knife", ["cutting board"], ["fridge", "kettle", "sink"]),
           ("e2", 12.7, 15.2, "tomato", ["knife"], ["bowl", "fridge", "kettle"]),
           ("e3", 20.5, 21.3, "bowl", ["spoon"], ["kettle", "sink", "toaster"]),
           ("e4", 40.6, 44.4, "kettle", ["mug"], ["fridge", "sink", "toaster"]),
           ("e5", 70.2, 73.9, "mug", ["kettle"], ["plate", "sponge", "toaster"])]
    write_timeline(store, "frac_video", eps, dataset="egtea", duration_s=4600.0)
    store.close()
    run_generate(root / "store.duckdb", root / "qa", seed=0)
    res = CliRunner().invoke(cli, ["export", "streamgaze-json", "--qa", str(root / "qa"), "--out", str(root / "out")])
    assert res.exit_code == 0, res.output
    (root / "videos").mkdir()
    for vid in ("toy_kitchen", "frac_video"):
        (root / "videos" / f"{vid}.mp4").write_bytes(b"")
    return root, res.output


def test_export_writes_one_file_per_task_in_the_released_shape(exported):
    root, output = exported
    assert sorted(p.stem for p in (root / "out").glob("*.json")) == sorted(TASK_TYPES)
    assert "test points changed type" in output
    for task_id in TASK_TYPES:
        lines = (root / "qa" / f"{task_id}.jsonl").read_text().splitlines()
        items = json.loads((root / "out" / f"{task_id}.json").read_text())
        assert len(items) == len(lines) > 0, task_id
        for item in items:
            assert list(item) == ["response_time", "questions", "video_categories", "video_path"]
            assert item["video_categories"] in ("DEMO", "EGTEA")


def test_every_exported_item_reads_back_under_the_reference_rules(exported):
    root, _ = exported
    for task_id, (task_type, ability) in TASK_TYPES.items():
        originals = [json.loads(l) for l in (root / "qa" / f"{task_id}.jsonl").read_text().splitlines()]
        items = json.loads((root / "out" / f"{task_id}.json").read_text())
        for orig, item in zip(originals, items):
            assert os.path.exists(ref_video_file(item, root / "videos"))
            (q,) = item["questions"]
            assert q["task_type"] == task_type and q["required_ability"] == ability
            t = ref_parse_time(q["time_stamp"])
            assert orig["time_s"] <= t < orig["time_s"] + 1  # ceil: the evidence stays inside [0, time_stamp]
            lo, hi = (ref_parse_time(x.strip()) for x in item["response_time"].strip("[]").split(" - "))
            if orig["family"] == "proactive":
                assert "answer" not in q and "options" not in q
                assert q["target_object"] == orig["evidence"]["target"]
                events = orig["evidence"]["event_intervals"]
                assert ref_parse_time(q["first_appearance"]) == math.floor(orig["evidence"]["onset_s"])
                assert len(q["test_info"]) == len(orig["test_points"])
                for info, point in zip(q["test_info"], orig["test_points"]):
                    shown = ref_parse_time(info["realtime"])  # the evaluator shows [0, realtime]
                    assert shown == math.floor(point["t_s"]) and info["type"] in (0, 1)
                    assert info["type"] == expected_at(shown, events, 10.0)
                assert lo == math.floor(orig["time_s"]) and hi == math.floor(orig["test_points"][-1]["t_s"])
                continue
            assert [o[:3] for o in q["options"]] == ["A. ", "B. ", "C. ", "D. "]
            assert [o[3:] for o in q["options"]] == orig["options"]
            assert q["options"]["ABCD".index(q["answer"])][3:] == orig["answer_text"]
            assert (lo, hi) == (math.floor(orig["clip"][0]), math.floor(orig["clip"][1]))


def test_minutes_do_not_wrap_and_changed_points_are_counted(tmp_path):
    from streamgaze.tasks.export import export_streamgaze_json, mmss

    assert (mmss(4502.4), mmss(4502.4, ceil=True), mmss(59.999)) == ("75:02", "75:03", "00:59")
    store = toy_store(tmp_path / "store.duckdb")
    store.close()
    run_generate(tmp_path / "store.duckdb", tmp_path / "qa", only=["proactive_gaze_triggered_alert"])
    # a hand-edited question whose event ends at 21.3 s and whose points fall at x.5 s: at floor(t) the window
    # (t - 10, t] of the point 31.5 meets the event (21.3 > 21), at 31.5 itself it does not
    path = tmp_path / "qa" / "proactive_gaze_triggered_alert.jsonl"
    q = json.loads(path.read_text())
    events = [[20.0, 21.3]]
    q["evidence"]["event_intervals"] = events
    q["test_points"] = [{"t_s": t, "expected": "yes" if expected_at(t, events, 10.0) else "no"} for t in (11.5, 21.5, 31.5, 41.5)]
    path.write_text(json.dumps(q) + "\n")
    summary = export_streamgaze_json(tmp_path / "qa", tmp_path / "out")
    assert summary["proactive_gaze_triggered_alert"] == {"items": 1, "changed_points": 1}
    (item,) = json.loads((tmp_path / "out" / "proactive_gaze_triggered_alert.json").read_text())
    assert item["questions"][0]["test_info"] == [
        {"realtime": "00:11", "type": 0}, {"realtime": "00:21", "type": 1},
        {"realtime": "00:31", "type": 1}, {"realtime": "00:41", "type": 0}]


def test_export_of_a_question_file_that_is_not_utf8_is_one_line(exported, tmp_path):
    root, _ = exported
    qa = tmp_path / "qa"
    qa.mkdir()
    src = root / "qa" / "past_scene_recall.jsonl"
    (qa / src.name).write_bytes(src.read_bytes() + "caf\u00e9\n".encode("latin-1"))
    res = CliRunner().invoke(cli, ["export", "streamgaze-json", "--qa", str(qa), "--out", str(tmp_path / "out"),
                                   "--store", str(root / "store.duckdb")])
    assert res.exit_code == 2 and "not UTF-8 text" in res.output and not (tmp_path / "out").exists()
