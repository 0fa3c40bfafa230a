"""Golden tests of the action-label loaders for EgoExoLearn and HoloAssist (tasks.md 4.1), on files written from
the documented formats in tests/fixtures, and their one-line errors naming file, record and field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.gaze.ingest import ingest as _ingest

FIX = Path(__file__).parent / "fixtures"
EGOEXO = FIX / "egoexolearn_actions" / "bee9d8dc-ac78-11ee-819f-80615f12b59e.json"
HOLO = FIX / "holoassist_actions" / "data-annotation-sample.json"


def ingest(*args, **kwargs):
    """These stores hold no video: the actions go in with ``allow_unknown_videos`` (the rule has its own tests)."""
    return _ingest(*args, allow_unknown_videos=True, **kwargs)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def actions(store: Path) -> list[tuple]:
    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT * FROM actions ORDER BY video_id, t_start")
    return [(a["video_id"], a["t_start"], a["t_end"], a["label"]) for a in rows]


def test_egoexolearn_golden(tmp_path):
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "egoexolearn-actions", [EGOEXO])
    vid = EGOEXO.stem  # the per-video file's stem is the video id
    assert "actions 3 rows" in summary
    assert actions(store) == [
        (vid, 3.0, 7.25, "open the fridge"),
        (vid, 12.4, 15.9, "pick up the knife"),
        (vid, 15.9, 21.0, "cut the tomato"),
    ]


def test_egoexolearn_object_wrapper_and_cli(tmp_path):
    segs = json.loads(EGOEXO.read_text())
    p = tmp_path / "v1.json"
    p.write_text(json.dumps({"annotations": segs}))
    store = tmp_path / "s.duckdb"
    res = CliRunner().invoke(cli, ["ingest", "egoexolearn-actions", str(p), "--store", str(store),
                                 "--allow-unknown-videos"])
    assert res.exit_code == 0, res.output
    assert [a[0] for a in actions(store)] == ["v1"] * 3


@pytest.mark.parametrize(
    "segments, row, column, problem",
    [
        ([{"start": 1, "end": 2, "textAttribute_en": "a"}, {"start": "x", "end": 2, "textAttribute_en": "b"}], 2, "start",
         "not a number"),
        ([{"start": 1, "textAttribute_en": "a"}], 1, "end", "missing"),
        ([{"start": 3, "end": 2, "textAttribute_en": "a"}], 1, "end", "before"),
        ([{"start": 1, "end": 2, "textAttribute_en": "a"}, {"start": 1, "end": 2, "textAttribute_en": "  "}], 2,
         "textAttribute_en", "empty label"),
        ([{"start": 1, "end": 2}], 1, "textAttribute_en", "not text"),
    ],
)
def test_egoexolearn_bad_records(tmp_path, segments, row, column, problem):
    p = tmp_path / "v.json"
    p.write_text(json.dumps(segments))
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "s.duckdb", "egoexolearn-actions", [p])
    e = err.value
    assert (e.path, e.row, e.column) == (str(p), row, column) and problem in e.problem
    assert "\n" not in e.message
    assert not (tmp_path / "s.duckdb").exists() or actions(tmp_path / "s.duckdb") == []


def test_egoexolearn_not_json(tmp_path):
    p = tmp_path / "v.json"
    p.write_text('[\n{"start": 1,\n')
    with pytest.raises(InputError, match=r"v.json: row \d+: not valid JSON"):
        ingest(tmp_path / "s.duckdb", "egoexolearn-actions", [p])
    p.write_text('{"a": 1}')
    with pytest.raises(InputError, match="expected a JSON list of segments"):
        ingest(tmp_path / "s.duckdb", "egoexolearn-actions", [p])


def test_holoassist_golden_skips_events_missing_a_part(tmp_path):
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "holoassist-actions", [HOLO], video_id="R007-7July-DSLR")
    assert "2 fine-grained event(s) without a verb or a noun skipped" in summary
    assert actions(store) == [
        ("R007-7July-DSLR", 2.5, 4.0, "grab battery"),
        ("R007-7July-DSLR", 5.0, 7.5, "insert battery"),
        ("R007-7July-DSLR", 10.0, 12.25, "attach lens cap"),
    ]
    ingest(store, "holoassist-actions", [HOLO], video_id="R014-7July-GoPro")
    assert actions(store)[-1] == ("R014-7July-GoPro", 1.0, 2.0, "press button")


def test_holoassist_unknown_video_and_bad_event(tmp_path):
    with pytest.raises(InputError, match="no video 'nope' \\(pass --video-id\\)"):
        ingest(tmp_path / "s.duckdb", "holoassist-actions", [HOLO], video_id="nope")
    data = json.loads(HOLO.read_text())
    data[0]["events"][3]["end"] = 1.0  # the 4th event: insert battery, 5.0 -> 1.0
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "s.duckdb", "holoassist-actions", [p], video_id="R007-7July-DSLR")
    assert (err.value.row, err.value.column) == (4, "end") and "R007-7July-DSLR" in err.value.problem
    data[0]["events"][3]["end"] = None
    p.write_text(json.dumps(data))
    with pytest.raises(InputError, match="row 4: column 'end'"):
        ingest(tmp_path / "s.duckdb", "holoassist-actions", [p], video_id="R007-7July-DSLR")


def test_formats_listed():
    res = CliRunner().invoke(cli, ["formats"])
    assert res.exit_code == 0, res.output
    assert "egoexolearn-actions" in res.output and "holoassist-actions" in res.output
