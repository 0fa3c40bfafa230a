"""Ingest: real Pupil Player fixture, written CSVs, and bad input (exit 2, one line, store untouched)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.gaze.ingest import ingest

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "pupil_player"
needs_fixture = pytest.mark.skipif(not FIXTURE.exists(), reason="shared fixture not present")

PUPIL_HEADER = "gaze_timestamp,world_index,confidence,norm_pos_x,norm_pos_y,base_data,gaze_point_3d_x\n"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pupil(folder: Path, t0=100.0, n=50, rate=120.0, world_t0=99.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = t0 + np.arange(n) / rate
    conf = np.where(np.arange(n) % 10 == 0, 0.3, 0.95)
    lines = [f"{ti:.6f},{i},{c},{0.25},{0.75},,\n" for i, (ti, c) in enumerate(zip(t, conf))]
    (folder / "gaze_positions.csv").write_text(PUPIL_HEADER + "".join(lines))
    if world_t0 is not None:
        (folder / "world_timestamps.csv").write_text(
            "# timestamps [seconds],pts\n" + "".join(f"{world_t0 + k / 24:.6f},{k}\n" for k in range(10))
        )
    return folder


@needs_fixture
def test_pupil_fixture_origin_and_flip(tmp_path):
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "pupil-player", [FIXTURE])
    assert "pupil_player" in summary and "gaze 2 rows" in summary
    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT * FROM gaze ORDER BY t_s")
        video = s.rows("SELECT * FROM videos")
    assert len(rows) == 2
    assert rows[0]["t_s"] == pytest.approx(65.305218199 - 65.300018, abs=1e-9)
    assert rows[0]["y"] == pytest.approx(1 - 0.540593097828053)  # 0.541 -> 0.459
    assert rows[0]["x"] == pytest.approx(0.566112013424144)
    assert all(r["valid"] and r["in_frame"] for r in rows)
    assert video[0]["width"] == 1088 and video[0]["height"] == 1080 and video[0]["n_frames"] == 2
    assert Path(video[0]["path"]).is_absolute()


@needs_fixture
def test_pupil_fixture_csv_with_video_flag(tmp_path):
    store = tmp_path / "s.duckdb"
    ingest(store, "pupil-player", [FIXTURE / "gaze_positions.csv"], video=FIXTURE / "world.mp4")
    with open_store(store, read_only=True) as s:
        assert s.video_ids() == ["world"]


def test_pupil_written_and_reingest_replaces(tmp_path):
    folder = write_pupil(tmp_path / "rec1")
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "pupil-player", [folder / "gaze_positions.csv"])
    assert "120.0 Hz" in summary and "90.0% valid" in summary
    ingest(store, "pupil-player", [folder])
    with open_store(store, read_only=True) as s:
        n, n_valid, t0, y = s.con.execute(
            "SELECT count(*), sum(valid::INT), min(t_s), any_value(y) FROM gaze WHERE video_id='rec1'"
        ).fetchone()
    assert n == 50 and n_valid == 45
    assert t0 == pytest.approx(0.5)
    assert y == pytest.approx(0.25)


def test_pupil_without_world_timestamps_uses_first_gaze(tmp_path):
    folder = write_pupil(tmp_path / "rec2", world_t0=None)
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "pupil-player", [folder])
    assert "first gaze timestamp" in summary
    with open_store(store, read_only=True) as s:
        assert s.con.execute("SELECT min(t_s) FROM gaze").fetchone()[0] == 0.0


def test_duplicate_timestamps_dropped(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("t_s,x,y\n0.0,0.5,0.5\n0.01,0.5,0.5\n0.01,0.6,0.6\n0.02,1.5,0.5\n")
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "generic-csv", [p], video_id="v")
    assert "dropped 1 duplicate" in summary
    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT * FROM gaze ORDER BY t_s")
    assert [r["x"] for r in rows] == [0.5, 0.5, 1.5]
    assert [r["in_frame"] for r in rows] == [True, True, False]


def test_generic_valid_column_and_actions(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("t_s,x,y,valid\n0.0,0.5,0.5,1\n0.1,,0.5,1\n0.2,0.5,0.5,0\n")
    a = tmp_path / "a.csv"
    a.write_text("t_start,t_end,label\n5.0,7.0,cut tomato\n0.5,3.5,take knife\n")
    store = tmp_path / "s.duckdb"
    ingest(store, "generic-csv", [p], video_id="v")
    ingest(store, "actions-csv", [a], video_id="v")
    ingest(store, "actions-csv", [a], video_id="v")
    with open_store(store, read_only=True) as s:
        assert [r["valid"] for r in s.rows("SELECT valid FROM gaze ORDER BY t_s")] == [True, False, False]
        acts = s.rows("SELECT * FROM actions ORDER BY t_start")
    assert [r["label"] for r in acts] == ["take knife", "cut tomato"]


def test_ego4d_flip(tmp_path):
    p = tmp_path / "uid.csv"
    p.write_text(
        "component_idx,component_timestamp_s,canonical_timestamp_s,world_index,confidence,norm_pos_x,norm_pos_y\n"
        "0,0.0,0.0,0,1.0,0.2,0.9\n0,0.005,0.005,0,1.0,0.2,0.9\n"
    )
    store = tmp_path / "s.duckdb"
    ingest(store, "ego4d-gaze", [p])
    with open_store(store, read_only=True) as s:
        assert s.video_ids() == [] and s.con.execute("SELECT y FROM gaze WHERE video_id='uid'").fetchone()[0] == pytest.approx(0.1)


def _bad_cases(tmp_path: Path):
    good = write_pupil(tmp_path / "good")
    cases = {}

    def pupil(name, text):
        d = tmp_path / name
        d.mkdir()
        (d / "gaze_positions.csv").write_text(text)
        return ["pupil-player", str(d / "gaze_positions.csv")], d / "gaze_positions.csv"

    cases["missing file"] = (["pupil-player", str(tmp_path / "nope.csv")], tmp_path / "nope.csv", None)
    args, f = pupil("cols", "gaze_timestamp,confidence,norm_x,norm_pos_y\n1,1,0.5,0.5\n")
    cases["wrong columns"] = (args, f, "norm_pos_x")
    args, f = pupil("nan", PUPIL_HEADER + "1.0,0,1,0.5,0.5,,\n,1,1,0.5,0.5,,\n")
    cases["NaN time"] = (args, f, "row 3")
    args, f = pupil("order", PUPIL_HEADER + "1.0,0,1,0.5,0.5,,\n2.0,1,1,0.5,0.5,,\n1.5,2,1,0.5,0.5,,\n")
    cases["non-monotonic"] = (args, f, "row 4")
    args, f = pupil("bad", PUPIL_HEADER + "1.0,0,1,0.5,0.5,,\n2.0,1,1,abc,0.5,,\n")
    cases["bad number"] = (args, f, "row 3")
    args, f = pupil("empty", "")
    cases["empty file"] = (args, f, "empty")
    args, f = pupil("header", PUPIL_HEADER)
    cases["header only"] = (args, f, "no data")
    empty_video = tmp_path / "empty.mp4"
    empty_video.write_bytes(b"")
    cases["empty video"] = (["pupil-player", str(good), "--video", str(empty_video)], empty_video, "empty")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 4)
    cases["unreadable video"] = (["pupil-player", str(good), "--video", str(junk)], junk, None)
    text_video = tmp_path / "notes.mp4"
    text_video.write_text("this is not a video\n")
    cases["text as video"] = (["pupil-player", str(good), "--video", str(text_video)], text_video, None)
    a = tmp_path / "a.csv"
    a.write_text("t_start,t_end,label\n1.0,0.5,x\n")
    cases["action end before start"] = (["actions-csv", str(a), "--video-id", "rec1"], a, "row 2")
    return good, cases


def test_bad_input_exit_2_store_untouched(tmp_path):
    good, cases = _bad_cases(tmp_path)
    store = tmp_path / "store.duckdb"
    runner = CliRunner()
    ok = runner.invoke(cli, ["ingest", "pupil-player", str(good), "--store", str(store)])
    assert ok.exit_code == 0, ok.output
    before = sha(store)
    for name, (args, path, fragment) in cases.items():
        res = runner.invoke(cli, ["ingest", *args, "--store", str(store)])
        out = res.output.strip()
        assert res.exit_code == 2, (name, res.output, res.exception)
        assert len(out.splitlines()) == 1, (name, out)
        assert str(path) in out or path.name in out, (name, out)
        if fragment:
            assert fragment in out, (name, out)
        assert sha(store) == before, name
    # a store that did not exist is not created by a failing ingest
    fresh = tmp_path / "fresh.duckdb"
    res = runner.invoke(cli, ["ingest", *cases["NaN time"][0], "--store", str(fresh)])
    assert res.exit_code == 2 and not fresh.exists()


def test_unknown_format_lists_available(tmp_path):
    with pytest.raises(Exception) as exc:
        ingest(tmp_path / "s.duckdb", "nope", [tmp_path])
    assert "pupil-player" in str(exc.value)


def test_probe_video_errors(tmp_path):
    from streamgaze.gaze.video import probe_video

    with pytest.raises(InputError, match="no such"):
        probe_video(tmp_path / "missing.mp4")
    if FIXTURE.exists():
        info = probe_video(FIXTURE / "world.mp4")
        assert (info.width, info.height, info.n_frames) == (1088, 1080, 2)


def test_video_id_column_puts_rows_under_their_videos(tmp_path):
    """One actions file for several videos: each row lands under its video; unknown videos are refused in one line
    (ids listed, the store unchanged) unless allowed."""
    store = tmp_path / "s.duckdb"
    for v in ("v1", "v2"):
        g = tmp_path / f"{v}.csv"
        g.write_text("t_s,x,y\n0.0,0.5,0.5\n0.1,0.5,0.5\n")
        ingest(store, "generic-csv", [g], video_id=v)
    a = tmp_path / "a.csv"
    a.write_text("video_id,t_start,t_end,label\nv2,5,6,cut\nv1,1,2,take\nv2,0.5,1,open\n")
    summary = ingest(store, "actions-csv", [a])
    assert "2 videos (video_id column)" in summary
    with open_store(store, read_only=True) as s:
        rows = [(r["video_id"], r["label"]) for r in s.rows("SELECT * FROM actions ORDER BY video_id, t_start")]
    assert rows == [("v1", "take"), ("v2", "open"), ("v2", "cut")]

    a.write_text("video_id,t_start,t_end,label\n" + "".join(f"x{i},1,2,l\n" for i in range(30)) + "v1,0,1,m\n")
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with pytest.raises(InputError, match=r"actions for 30 video\(s\) .*'x0', 'x1', 'x10', 'x11', 'x12' and 25 more"):
        ingest(store, "actions-csv", [a])
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    ingest(store, "actions-csv", [a], allow_unknown_videos=True)
    with open_store(store, read_only=True) as s:
        assert s.rows("SELECT count(DISTINCT video_id) AS n FROM actions")[0]["n"] == 32  # v2's rows kept

    ingest(store, "actions-csv", [a], video_id="v1")  # --video-id picks that video's rows
    with open_store(store, read_only=True) as s:
        assert [r["label"] for r in s.rows("SELECT * FROM actions WHERE video_id = 'v1'")] == ["m"]
    with pytest.raises(InputError, match="no rows of video 'v9'"):
        ingest(store, "actions-csv", [a], video_id="v9")


def test_generic_gaze_video_id_column_checks_times_per_video(tmp_path):
    store = tmp_path / "s.duckdb"
    g = tmp_path / "g.csv"
    g.write_text("t_s,x,y,video_id\n0.0,0.5,0.5,a\n0.0,0.5,0.5,b\n0.1,0.5,0.5,a\n0.05,0.5,0.5,a\n")
    with pytest.raises(InputError, match="row 5: column 't_s': time goes backwards"):
        ingest(store, "generic-csv", [g], allow_unknown_videos=True)
    g.write_text("t_s,x,y,video_id\n0.0,0.5,0.5,a\n0.0,0.5,0.5,b\n0.1,0.5,0.5,a\n")
    with pytest.raises(InputError, match="does not hold: 'a', 'b'"):
        ingest(store, "generic-csv", [g])
    assert not store.exists()
    ingest(store, "generic-csv", [g], allow_unknown_videos=True)
    with open_store(store, read_only=True) as s:
        assert [(r["video_id"], r["n"]) for r in s.rows("SELECT video_id, count(*) AS n FROM gaze GROUP BY 1 ORDER BY 1")] == [("a", 2), ("b", 1)]
