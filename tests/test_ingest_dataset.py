"""``streamgaze ingest-dataset``: miniature folder trees in each dataset's shipped layout (the format fixtures as
contents, real videos written with OpenCV), each with broken recordings among good ones."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import StreamGazeError
from streamgaze.gaze.datasets.recipes import load_recipe

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared fixture not present")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def write_video(path: Path, n_frames: int = 30, fps: float = 30.0, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(n_frames):
        out.write(np.full((size[1], size[0], 3), (k * 7) % 255, np.uint8))
    out.release()
    return path


def put(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, dst))


@dataclass
class Tree:
    """A dataset tree and what discovery and ingest must make of it."""

    name: str
    root: Path
    good: list[str]
    broken: dict[str, str]  # recording id -> words of its one-line error
    gaze_only: list[str] = field(default_factory=list)
    video_only: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)  # recording id -> words of a warning
    fix: callable = None  # repairs the broken recordings


def egtea(tmp: Path) -> Tree:
    root = tmp / "EGTEA_Gaze+"  # an extra folder level from unzipping
    v1 = (FIXTURES / "egtea_v1.txt").read_text()
    copy(FIXTURES / "egtea_v1.txt", root / "gaze_data" / "OP01-R01-PastaSalad.txt")
    copy(FIXTURES / "egtea_v2.txt", root / "gaze_data" / "OP02-R03-BaconAndEggs.txt")
    put(root / "gaze_data" / "OP03-R02-TurkeySandwich.txt", v1.replace("642.00", "abc"))  # text in a number column
    copy(FIXTURES / "egtea_v1.txt", root / "gaze_data" / "OP04-R01-Pizza.txt")  # gaze without video
    for vid in ("OP01-R01-PastaSalad", "OP02-R03-BaconAndEggs", "OP03-R02-TurkeySandwich", "OP05-R04-Salad"):
        write_video(root / "videos" / f"{vid}.mp4", fps=24)
    copy(FIXTURES / "egtea_actions" / "train_split1.txt", root / "action_annotation" / "train_split1.txt")
    copy(FIXTURES / "egtea_actions" / "train_split1.txt", root / "action_annotation" / "train_split2.txt")
    copy(FIXTURES / "egtea_actions" / "action_idx.txt", root / "action_annotation" / "action_idx.txt")
    put(root / "readme.md", "EGTEA")
    put(root / "gaze_data" / "calibration.dat", "x")

    def fix():
        copy(FIXTURES / "egtea_v1.txt", root / "gaze_data" / "OP03-R02-TurkeySandwich.txt")

    return Tree("egtea-gaze-plus", root, ["OP01-R01-PastaSalad", "OP02-R03-BaconAndEggs"],
                {"OP03-R02-TurkeySandwich": "cannot parse"}, ["OP04-R01-Pizza"], ["OP05-R04-Salad"],
                ["gaze_data/calibration.dat"], fix=fix)


EGO4D_HEADER = "component_idx,component_timestamp_s,canonical_timestamp_s,world_index,confidence,norm_pos_x,norm_pos_y\n"


def ego4d_csv(n: int = 40, rate: float = 30.0) -> str:
    return EGO4D_HEADER + "".join(f"0,{k / rate:.4f},{k / rate:.4f},{k},1.0,0.4,0.6\n" for k in range(n))


def ego4d(tmp: Path) -> Tree:
    root = tmp / "ego4d_data" / "v2"
    put(root / "gaze" / "uid-1.csv", ego4d_csv())
    put(root / "gaze" / "uid-2.mp4", ego4d_csv())  # the Ego4D pitfall: a gaze CSV with an .mp4 suffix
    put(root / "gaze" / "uid-3.csv", ego4d_csv()[:-9])  # truncated mid-row
    put(root / "gaze" / "uid-4.csv", ego4d_csv())
    for uid in ("uid-1", "uid-2", "uid-3", "uid-5"):
        write_video(root / "full_scale" / f"{uid}.mp4")
    put(root / "ego4d.json", "{}")
    put(root / "gaze" / "notes.bin", b"\x00\x01")

    def fix():
        put(root / "gaze" / "uid-3.csv", ego4d_csv())

    return Tree("ego4d-gaze", root, ["uid-1", "uid-2"], {"uid-3": "uid-3.csv"}, ["uid-4"], ["uid-5"],
                ["gaze/notes.bin"], {"uid-2": ".mp4 suffix"}, fix=fix)


def egoexolearn(tmp: Path) -> Tree:
    root = tmp / "EgoExoLearn"
    ids = ["bee9d8dc-ac78-11ee-819f-80615f12b59e", "c0ffee00-ac78-11ee-819f-80615f12b59e"]
    for vid in ids:
        copy(FIXTURES / "egoexo.npy", root / "gazes_30fps_npy" / f"{vid}.npy")
        write_video(root / "videos" / f"{vid}.mp4")
        put(root / "annotations" / f"{vid}.json",
            (FIXTURES / "egoexolearn_actions" / "bee9d8dc-ac78-11ee-819f-80615f12b59e.json").read_text())
    data = (FIXTURES / "egoexo.npy").read_bytes()
    put(root / "gazes_30fps_npy" / "broken-1.npy", data[:100])  # truncated
    write_video(root / "videos" / "broken-1.mp4")
    copy(FIXTURES / "egoexo.npy", root / "gazes_30fps_npy" / "lonely.npy")

    def fix():
        copy(FIXTURES / "egoexo.npy", root / "gazes_30fps_npy" / "broken-1.npy")

    return Tree("egoexolearn", root, ids, {"broken-1": "npy"}, ["lonely"], [], fix=fix)


def holoassist(tmp: Path) -> Tree:
    root = tmp / "HoloAssist"
    for sid in ("R001", "R002", "R003", "R004"):
        shutil.copytree(FIXTURES / "holoassist" / "R001", root / sid)
    for sid in ("R001", "R002", "R003"):
        write_video(root / sid / "Export_py" / "Video_pitchshift.mp4")
    eyes = root / "R003" / "Export_py" / "Eyes" / "Eyes_sync.txt"
    good_eyes = eyes.read_text()
    put(eyes, good_eyes.replace("20000000", "twenty", 1))  # text in a number column
    put(root / "R001" / "Export_py" / "Hands" / "Left_sync.txt", "0")
    put(root / "annotations" / "data-annotation-trainval-v1_1.json", json.dumps([{
        "video_name": "R001", "events": [{"label": "Fine grained action", "start": 0.2, "end": 0.8,
                                          "attributes": {"Verb": "grab", "Noun": "battery"}}]}]))

    def fix():
        put(eyes, good_eyes)

    return Tree("holoassist", root, ["R001", "R002"], {"R003": "Eyes_sync.txt"}, ["R004"], [], fix=fix)


def aria(tmp: Path) -> Tree:
    root = tmp / "aea"
    gen1 = SHARED / "aria_mps" / "gen1" / "mps_sample" / "eye_gaze"
    gen2 = SHARED / "aria_mps" / "gen2" / "mps_sample" / "eye_gaze"
    for name in ("eyegaze.csv", "generalized_eye_gaze.csv", "summary.json"):
        copy(gen1 / name, root / "loc1_script1_seq1_rec1" / "mps" / "eye_gaze" / name)
    for name in ("general_eye_gaze.csv", "personalized_eye_gaze.csv"):
        copy(gen2 / name, root / "loc2_script1_seq1_rec1" / "mps" / "eye_gaze" / name)
    text = (gen1 / "generalized_eye_gaze.csv").read_text().splitlines(keepends=True)
    cells = text[3].split(",")
    cells[1] = "abc"
    put(root / "loc3_script1_seq1_rec1" / "mps" / "eye_gaze" / "general_eye_gaze.csv", "".join(text[:3] + [",".join(cells)] + text[4:]))
    copy(gen1 / "eyegaze.csv", root / "loc4_script1_seq1_rec1" / "mps" / "eye_gaze" / "eyegaze.csv")
    for seq in ("loc1_script1_seq1_rec1", "loc2_script1_seq1_rec1", "loc3_script1_seq1_rec1"):
        write_video(root / seq / "rgb.mp4", n_frames=60)
        put(root / seq / "recording.vrs", b"VRS")

    def fix():
        copy(gen1 / "generalized_eye_gaze.csv", root / "loc3_script1_seq1_rec1" / "mps" / "eye_gaze" / "general_eye_gaze.csv")

    return Tree("aria-mps", root, ["loc1_script1_seq1_rec1", "loc2_script1_seq1_rec1"],
                {"loc3_script1_seq1_rec1": "general_eye_gaze.csv"}, ["loc4_script1_seq1_rec1"], [],
                warnings={"loc1_script1_seq1_rec1": "10 Hz"}, fix=fix)


def pupil_cloud_csv(n: int = 300, rate: float = 200.0, t0_ns: int = 1_000_000_000_000) -> str:
    head = "section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn,fixation id,blink id,azimuth [deg],elevation [deg]\n"
    rows = [f"s,r,{t0_ns + int(round(k * 1e9 / rate))},{32 + k % 5},{24},{0 if k % 10 == 0 else 1},,,0,0\n" for k in range(n)]
    return head + "".join(rows)


def pupil_cloud(tmp: Path) -> Tree:
    root = tmp / "Timeseries Data + Scene Video"
    t0 = 1_000_000_000_000
    world = "section id,recording id,timestamp [ns]\n" + "".join(f"s,r,{t0 + k * 33_333_333}\n" for k in range(60))
    for rec, rate, n in (("2024-01-01_10-00-00-aaaa", 200.0, 300), ("2024-01-01_11-00-00-bbbb", 10.0, 20)):
        put(root / rec / "gaze.csv", pupil_cloud_csv(n, rate, t0))
        put(root / rec / "world_timestamps.csv", world)
        put(root / rec / "scene_camera.json", json.dumps({"camera_matrix": [[40, 0, 32], [0, 40, 24], [0, 0, 1]]}))
        write_video(root / rec / "0b1c2d3e.mp4", n_frames=60)
        put(root / rec / "events.csv", "x\n")
    bad = root / "2024-01-01_12-00-00-cccc"
    put(bad / "gaze.csv", pupil_cloud_csv(30, 200.0, t0).replace(f"{t0 + 5_000_000},", "5 ms,", 1))
    write_video(bad / "0b1c2d3e.mp4", n_frames=60)
    put(root / "2024-01-01_13-00-00-dddd" / "gaze.csv", pupil_cloud_csv(30, 200.0, t0))
    write_video(root / "2024-01-01_14-00-00-eeee" / "0b1c2d3e.mp4")

    def fix():
        put(bad / "gaze.csv", pupil_cloud_csv(30, 200.0, t0))

    return Tree("pupil-cloud", root, ["2024-01-01_10-00-00-aaaa", "2024-01-01_11-00-00-bbbb"],
                {"2024-01-01_12-00-00-cccc": "timestamp [ns]"}, ["2024-01-01_13-00-00-dddd"],
                ["2024-01-01_14-00-00-eeee"], warnings={"2024-01-01_11-00-00-bbbb": "slower than the video"}, fix=fix)


def pupil_player(tmp: Path) -> Tree:
    root = tmp / "recordings"
    src = SHARED / "pupil_player"
    for rec in ("2024_01_01/000", "2024_01_01/001", "2024_01_02/000"):
        pass
    for rec in ("rec_a", "rec_b", "rec_c"):
        copy(src / "world.mp4", root / rec / "world.mp4")
        put(root / rec / "eye0.mp4", b"\x00")
        put(root / rec / "info.player.json", "{}")
        for export in ("000", "001"):
            copy(src / "gaze_positions.csv", root / rec / "exports" / export / "gaze_positions.csv")
            copy(src / "world_timestamps.csv", root / rec / "exports" / export / "world_timestamps.csv")
    newest = root / "rec_c" / "exports" / "001" / "gaze_positions.csv"
    good_text = newest.read_text()
    put(newest, good_text[: len(good_text) // 2 + 40])  # truncated mid-row (only the newest export is read)
    copy(src / "gaze_positions.csv", root / "rec_d" / "exports" / "000" / "gaze_positions.csv")

    def fix():
        put(newest, good_text)

    return Tree("pupil-player", root, ["rec_a", "rec_b"], {"rec_c": "exports/001/gaze_positions.csv"}, ["rec_d"], [],
                fix=fix)


def release(tmp: Path) -> Tree:
    root = tmp / "StreamGaze"
    header = "video_name,episode_start_time,episode_end_time,representative_object,other_objects_in_cropped_area,other_objects_outside_fov\n"
    rows = ('vid_a.mp4,0.0,0.5,"{""object_identity"": ""knife""}","[""board""]","[]"\n'
            'vid_a.mp4,0.6,0.9,"{""object_identity"": ""tomato""}","[]","[]"\n'
            'vid_b.mp4,0.1,0.4,"{""object_identity"": ""cup""}","[]","[]"\n')
    put(root / "metadata" / "egtea_metadata.csv", header + rows)
    write_video(root / "videos" / "vid_a.mp4")
    write_video(root / "videos" / "vid_b.mp4")
    good_video = (root / "videos" / "vid_a.mp4").read_bytes()
    put(root / "videos" / "vid_c.mp4", good_video[:200])  # truncated video
    put(root / "qa" / "past_scene_recall.json", "[]")

    def fix():
        put(root / "videos" / "vid_c.mp4", good_video)

    return Tree("streamgaze-release", root, ["vid_a", "vid_b"], {"vid_c": "vid_c.mp4"}, fix=fix)


TREES = {"egtea-gaze-plus": egtea, "ego4d-gaze": ego4d, "egoexolearn": egoexolearn, "holoassist": holoassist,
         "aria-mps": aria, "pupil-cloud": pupil_cloud, "pupil-player": pupil_player, "streamgaze-release": release}
SHARED_TREES = {"aria-mps", "pupil-player"}


def run(*args) -> object:
    return CliRunner().invoke(cli, ["ingest-dataset", *map(str, args)])


def store_rows(store: Path, sql: str) -> list[tuple]:
    with open_store(store, read_only=True) as s:
        return s.con.execute(sql).fetchall()


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(TREES))
def test_dataset_tree(tmp_path, name):
    """Discovery lists every group; broken recordings cost one line each and exit 2; the good ones go in whole;
    a rerun skips them and retries the broken ones, which go in once fixed."""
    if name in SHARED_TREES and not SHARED.exists():
        pytest.skip("shared fixture not present")
    tree = TREES[name](tmp_path / "data")
    store = tmp_path / "store.duckdb"
    before = tree_digest(tree.root)

    dry = run(name, tree.root, "--store", store, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert not store.exists()
    assert f"complete recordings: {len(tree.good) + len(tree.broken)}" in dry.output
    for rid in tree.good + list(tree.broken):
        assert f"  {rid}: " in dry.output
    if tree.gaze_only:
        assert f"without video: {len(tree.gaze_only)}" in dry.output
    for rid in tree.gaze_only + tree.video_only:
        assert f"  {rid}: " in dry.output
    if tree.video_only:
        assert "video without gaze" in dry.output
    assert f"files no rule matched: {len(tree.unmatched)}" in dry.output
    for rel in tree.unmatched:
        assert f"  {rel}" in dry.output

    res = run(name, tree.root, "--store", store)
    assert res.exit_code == 2, res.output
    failed = [line for line in res.output.splitlines() if line.startswith("failed ")]
    assert len(failed) == len(tree.broken), res.output
    for rid, words in tree.broken.items():
        line = next(line for line in failed if line.startswith(f"failed {rid}: "))
        assert words in line, line
    assert f"{len(tree.broken)} of {len(tree.good) + len(tree.broken)} recordings failed" in res.output
    assert tree_digest(tree.root) == before  # the dataset's files are left as they were
    held = [r[0] for r in store_rows(store, "SELECT video_id FROM videos ORDER BY video_id")]
    assert held == sorted(tree.good)
    checked = store_rows(store, "SELECT video_id, warnings FROM recording_checks ORDER BY video_id")
    assert [r[0] for r in checked] == sorted(tree.good)
    for rid, words in tree.warnings.items():
        assert words in dict(checked)[rid]
    for rid in tree.broken:  # nothing of a failed recording
        for table in ("gaze", "actions", "episodes", "recording_sources"):
            assert not store_rows(store, f"SELECT 1 FROM {table} WHERE video_id = '{rid}'")
    if name != "streamgaze-release":
        counts = dict(store_rows(store, "SELECT video_id, count(*) FROM gaze GROUP BY video_id"))
        assert sorted(counts) == sorted(tree.good) and all(n > 0 for n in counts.values())

    again = run(name, tree.root, "--store", store)
    assert again.exit_code == 2
    assert f"ingested 0, unchanged {len(tree.good)}, failed {len(tree.broken)}" in again.output

    tree.fix()
    fixed = run(name, tree.root, "--store", store)
    assert fixed.exit_code == 0, fixed.output
    assert f"ingested {len(tree.broken)}, unchanged {len(tree.good)}, failed 0" in fixed.output
    held = [r[0] for r in store_rows(store, "SELECT video_id FROM videos ORDER BY video_id")]
    assert held == sorted(tree.good + list(tree.broken))


def test_dataset_specific_content(tmp_path):
    """Annotations pair by name: EGTEA's shared split file gives each session its own clips; splits 2 and 3 (the
    same clips again) are not read twice; the release's shared metadata gives each video its own episodes."""
    tree = egtea(tmp_path / "e")
    store = tmp_path / "e.duckdb"
    run(tree.name, tree.root, "--store", store)
    acts = store_rows(store, "SELECT video_id, t_start, t_end, label FROM actions ORDER BY video_id, t_start")
    assert acts == [("OP01-R01-PastaSalad", 0.5, 2.5, "Open fridge"),
                    ("OP01-R01-PastaSalad", 1002.316, 1004.005, "Cut tomato"),
                    ("OP02-R03-BaconAndEggs", 0.1, 0.2, "Open fridge")]
    rel = release(tmp_path / "r")
    store2 = tmp_path / "r.duckdb"
    run(rel.name, rel.root, "--store", store2)
    eps = store_rows(store2, "SELECT video_id, count(*) FROM episodes GROUP BY video_id ORDER BY video_id")
    assert eps == [("vid_a", 2), ("vid_b", 1)]
    objs = store_rows(store2, "SELECT name FROM objects WHERE video_id = 'vid_a' AND role = 'gazed' ORDER BY name")
    assert objs == [("knife",), ("tomato",)]


def test_checks_values(tmp_path):
    """recording_checks: 200 Hz gaze over the first 1.5 s of a 2 s, 30 fps video (every 10th sample not worn);
    10 Hz gaze over 2 s of the same video (slower than the frames)."""
    tree = pupil_cloud(tmp_path / "d")
    store = tmp_path / "s.duckdb"
    run(tree.name, tree.root, "--store", store, "--only", "*-aaaa")
    run(tree.name, tree.root, "--store", store, "--only", "*-bbbb")
    rows = {r[0]: r[1:] for r in store_rows(store, "SELECT video_id, n_gaze, gaze_rate_hz, video_fps, video_duration_s, "
                                                   "coverage, invalid_share, outside_share, frames_per_sample, "
                                                   "rate_mismatch, warnings FROM recording_checks")}
    fast = rows["2024-01-01_10-00-00-aaaa"]
    assert fast[0] == 300 and fast[1] == pytest.approx(200.0) and fast[2] == pytest.approx(30.0)
    assert fast[3] == pytest.approx(2.0, abs=0.05)
    assert fast[4] == pytest.approx(45 / 60, abs=1 / 60)  # frames 0..44 hold gaze
    assert fast[5] == pytest.approx(0.1) and fast[6] == 0.0
    assert fast[7] == pytest.approx(0.15) and fast[8] is False
    assert "covers only" in fast[9] and "slower" not in fast[9]
    slow = rows["2024-01-01_11-00-00-bbbb"]
    assert slow[0] == 20 and slow[1] == pytest.approx(10.0)
    assert slow[7] == pytest.approx(3.0) and slow[8] is True
    assert "each sample serves 3.0 frames" in slow[9]
    assert "documents 200 Hz" in slow[9]  # the recipe's fact: Neon gaze is 200 Hz
    # the summary table shows them too, from the store for a recording a rerun skips
    res = run(tree.name, tree.root, "--store", store, "--only", "*-bbbb")
    assert res.exit_code == 0 and "ingested 0, unchanged 1" in res.output
    assert "│ unchanged │" in res.output and "each sample serves 3.0" in res.output


def test_moved_dataset_folder_is_unchanged(tmp_path):
    """Source paths are stored relative to ROOT: the same files under another root are skipped."""
    tree = pupil_cloud(tmp_path / "d")
    tree.fix()
    store = tmp_path / "s.duckdb"
    assert run(tree.name, tmp_path / "d", "--store", store).exit_code == 0
    moved = Path(shutil.move(str(tmp_path / "d"), str(tmp_path / "elsewhere")))
    res = run(tree.name, moved, "--store", store)
    assert res.exit_code == 0 and "ingested 0, unchanged 3, failed 0" in res.output
    paths = [r[0] for r in store_rows(store, "SELECT path FROM recording_sources ORDER BY path")]
    assert paths[0].startswith("Timeseries Data + Scene Video/2024-01-01_10-00-00-aaaa/")
    videos = [Path(r[0]) for r in store_rows(store, "SELECT path FROM videos")]
    assert videos and all(p.is_relative_to(moved) and p.is_file() for p in videos)  # the video rows followed
    before = store.read_bytes()
    assert run(tree.name, moved, "--store", store).exit_code == 0
    assert store.read_bytes() == before  # a rerun with nothing changed writes nothing


def test_changed_file_is_reingested(tmp_path):
    """A recording whose gaze file changed replaces its rows (one transaction); the others are skipped."""
    tree = pupil_cloud(tmp_path / "d")
    store = tmp_path / "s.duckdb"
    tree.fix()
    assert run(tree.name, tree.root, "--store", store).exit_code == 0
    rid = "2024-01-01_10-00-00-aaaa"
    put(tree.root / rid / "gaze.csv", pupil_cloud_csv(100, 200.0))
    res = run(tree.name, tree.root, "--store", store)
    assert res.exit_code == 0 and "ingested 1, unchanged 2, failed 0" in res.output
    assert store_rows(store, f"SELECT count(*) FROM gaze WHERE video_id = '{rid}'") == [(100,)]
    assert store_rows(store, f"SELECT n_gaze FROM recording_checks WHERE video_id = '{rid}'") == [(100,)]
    assert store_rows(store, f"SELECT count(*) FROM videos WHERE video_id = '{rid}'") == [(1,)]
    assert store_rows(store, "SELECT count(DISTINCT video_id), count(*) FROM recording_checks") == [(3, 3)]


def test_jobs_two_same_store_content(tmp_path):
    tree = egtea(tmp_path / "d")
    contents = []
    for jobs in (1, 2):
        store = tmp_path / f"s{jobs}.duckdb"
        res = run(tree.name, tree.root, "--store", store, "--jobs", jobs)
        assert res.exit_code == 2, res.output
        contents.append({t: store_rows(store, f"SELECT * FROM {t} ORDER BY ALL")
                         for t in ("videos", "gaze", "actions", "gaze_units", "recording_checks", "recording_sources")})
    assert contents[0] == contents[1]


def test_bad_recipe_and_name(tmp_path):
    bad = put(tmp_path / "mine.yaml", "name: mine\ntitle: t\ndescription: d\nlicence: l\n"
                                      "files:\n  - {role: gaze, pattern: '(?P<id>.+)\\.csv$'}\n")
    with pytest.raises(StreamGazeError, match=r"mine\.yaml: files\.0: .*needs a format"):
        load_recipe(bad)
    put(bad, "name: mine\nfiles: [")
    with pytest.raises(StreamGazeError, match=r"mine\.yaml: not valid YAML"):
        load_recipe(bad)
    put(bad, "name: mine\ntitle: t\ndescription: d\nlicence: l\nfiles:\n  - {role: video, pattern: '[', format: x}\n")
    with pytest.raises(StreamGazeError, match=r"mine\.yaml: files\.0\.pattern: .*not a regular expression"):
        load_recipe(bad)
    res = run("no-such-dataset", tmp_path, "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 2 and "unknown dataset 'no-such-dataset'; available: aria-mps" in res.output
    res = run("pupil-cloud", tmp_path / "missing", "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 2 and "missing: no such folder" in res.output


def test_recipes_listed():
    out = CliRunner().invoke(cli, ["formats"]).output
    for name in TREES:
        assert f"\n{name} " in out
    rows = json.loads(CliRunner().invoke(cli, ["plugins", "list", "--json"]).output)
    assert {r["name"] for r in rows if r["kind"] == "dataset"} == set(TREES)


def test_store_made_before_the_dataset_tables(tmp_path):
    """A store without recording_sources / recording_checks (made before they existed) is read as it is and gets
    them with its next write."""
    import duckdb

    tree = pupil_cloud(tmp_path / "d")
    tree.fix()
    store = tmp_path / "s.duckdb"
    assert run(tree.name, tree.root, "--store", store, "--only", "*-aaaa").exit_code == 0
    con = duckdb.connect(str(store))
    con.execute("DROP TABLE recording_sources")
    con.execute("DROP TABLE recording_checks")
    con.close()
    res = CliRunner().invoke(cli, ["sql", "SELECT count(*) FROM videos", "--store", str(store)])
    assert res.exit_code == 0, res.output
    res = run(tree.name, tree.root, "--store", store)
    assert res.exit_code == 0 and "ingested 3, unchanged 0, failed 0" in res.output  # no hashes: all re-read
    assert store_rows(store, "SELECT count(*) FROM recording_checks") == [(3,)]
    assert store_rows(store, "SELECT count(*) FROM videos") == [(3,)]


def test_two_gaze_files_for_one_recording(tmp_path):
    """Two candidate gaze files for one recording (a rule without pick: last) are listed and that recording is
    skipped; with pick: last (Pupil Player's numbered exports) the newest is read."""
    root = tmp_path / "v2"
    put(root / "gaze" / "uid-1.csv", ego4d_csv())
    put(root / "gaze" / "uid-1.mp4", ego4d_csv())
    put(root / "gaze" / "uid-2.csv", ego4d_csv())
    for uid in ("uid-1", "uid-2"):
        write_video(root / "full_scale" / f"{uid}.mp4")
    store = tmp_path / "s.duckdb"
    res = run("ego4d-gaze", root, "--store", store)
    assert res.exit_code == 0, res.output
    assert "ambiguous recordings (skipped): 1" in res.output
    assert "uid-1: 2 gaze files for one recording (gaze/uid-1.csv, gaze/uid-1.mp4)" in res.output
    assert store_rows(store, "SELECT video_id FROM videos") == [("uid-2",)]


def test_recipe_naming_an_unknown_format(tmp_path, monkeypatch):
    from streamgaze.gaze.datasets import recipes

    bad = put(tmp_path / "mine.yaml", "name: mine\ntitle: t\ndescription: d\nlicence: l\n"
                                      "files:\n  - {role: gaze, pattern: '(?P<id>.+)\\.csv$', format: no-such}\n"
                                      "  - {role: video, pattern: '(?P<id>.+)\\.mp4$'}\n")
    monkeypatch.setattr(recipes, "recipe_paths", lambda: {"mine": (bad, "test")})
    with pytest.raises(StreamGazeError, match=r"mine\.yaml: files\.0\.format: unknown format 'no-such'"):
        recipes.get_recipe("mine")


def test_parquet_export_of_a_store_without_the_dataset_tables(tmp_path):
    import duckdb

    from streamgaze.parquet import export_parquet
    from streamgaze.tasks.testing import toy_store

    store = tmp_path / "s.duckdb"
    toy_store(store).close()
    con = duckdb.connect(str(store))
    con.execute("DROP TABLE recording_sources")
    con.execute("DROP TABLE recording_checks")
    con.close()
    counts = export_parquet(store, tmp_path / "pq")
    assert counts["recording_checks"] == 0 and counts["episodes"] == 6
    assert (tmp_path / "pq" / "recording_checks").is_dir()
