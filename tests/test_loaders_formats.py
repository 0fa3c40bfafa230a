"""Golden tests of the device-format loaders (real shared fixtures where they exist, else files written from
the documented format in tests/fixtures), plus "no crash on any shared file"."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamgaze import open_store
from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.gaze.ingest import ingest

FIX = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared fixtures not present")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def units(store: Path) -> dict[str, tuple]:
    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT * FROM gaze_units")
    return {r["video_id"]: (r["deg_per_unit"], r["aspect"], r["source"]) for r in rows}


def gaze(store: Path, vid: str | None = None) -> list[dict]:
    with open_store(store, read_only=True) as s:
        where = "WHERE video_id = ?" if vid else ""
        return s.rows(f"SELECT * FROM gaze {where} ORDER BY t_s", [vid] if vid else [])


def test_egtea_v1(tmp_path):
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "egtea-smi", [FIX / "egtea_v1.txt"])
    assert "v1" in summary
    g = gaze(store, "egtea_v1")
    # frames 0,0,1,2,2,2 at 24 fps; samples spread within their frame
    assert [r["t_s"] for r in g] == pytest.approx([0, 1 / 48, 1 / 24, 2 / 24, 2 / 24 + 1 / 72, 2 / 24 + 2 / 72])
    assert (g[0]["x"], g[0]["y"]) == pytest.approx((0.5, 0.5))
    assert (g[2]["x"], g[2]["y"]) == pytest.approx((1300 / 1280, 100 / 960))
    assert g[2]["valid"] and not g[2]["in_frame"]  # out of frame: value kept, flagged
    assert not g[3]["valid"]  # POR (0, 0), event "-": no gaze


def test_egtea_v2_timecode(tmp_path):
    store = tmp_path / "s.duckdb"
    ingest(store, "egtea-smi", [FIX / "egtea_v2.txt"])
    g = gaze(store, "egtea_v2")
    assert [r["t_s"] for r in g] == pytest.approx([0, 1 / 48, 1 / 24, 1.0])
    assert (g[1]["x"], g[1]["y"]) == pytest.approx((642 / 1280, 482 / 960))


def test_egtea_bad_row_names_line(tmp_path):
    p = tmp_path / "bad.txt"
    lines = (FIX / "egtea_v1.txt").read_text().splitlines()
    lines[36] = lines[36].replace("SMP\t1\t", "SMP\t")  # 6 fields
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="row 37"):
        ingest(tmp_path / "s.duckdb", "egtea-smi", [p])


def test_egoexolearn_npy(tmp_path):
    store = tmp_path / "s.duckdb"
    ingest(store, "egoexolearn-npy", [FIX / "egoexo.npy"])
    g = gaze(store, "egoexo")
    assert [r["t_s"] for r in g] == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])
    assert [r["valid"] for r in g] == [True, True, False, True]
    assert [r["in_frame"] for r in g] == [True, True, True, False]
    assert g[1]["y"] == pytest.approx(0.3)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 2)))
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        ingest(store, "egoexolearn-npy", [bad])


def test_holoassist_projection(tmp_path):
    store = tmp_path / "s.duckdb"
    ingest(store, "holoassist", [FIX / "holoassist" / "R001"])
    g = gaze(store, "R001")
    assert [r["t_s"] for r in g] == pytest.approx([0.1, 0.2, 1.1, 1.2, 1.3])
    assert (g[0]["x"], g[0]["y"]) == pytest.approx((0.5, 0.5))  # straight ahead: principal point
    assert (g[1]["x"] * 896, g[1]["y"] * 504) == pytest.approx((498.0, 277.0))
    assert (g[2]["x"] * 896, g[2]["y"] * 504) == pytest.approx((348.0, 252.0))  # nearest pose (translated)
    assert not g[3]["valid"] and g[3]["x"] is None  # behind the camera
    assert not g[4]["valid"] and g[4]["x"] == pytest.approx(0.5)  # device flag 0: kept, invalid
    # the angular scale comes from the intrinsics: at the centre one pixel spans 1 / fx rad
    deg, aspect, source = units(store)["R001"]
    assert (deg, aspect) == pytest.approx((math.degrees(896 / 500), 504 / 896)) and "Intrinsics.txt" in source
    # re-ingested in a format that knows no scale: the stale scale goes with the old gaze
    csv_path = tmp_path / "g.csv"
    csv_path.write_text("t_s,x,y\n0,0.5,0.5\n0.1,0.5,0.5\n")
    ingest(store, "generic-csv", [csv_path], video_id="R001")
    assert units(store) == {}


def test_pupil_cloud(tmp_path):
    store = tmp_path / "s.duckdb"
    summary = ingest(store, "pupil-cloud", [FIX / "pupil_cloud" / "gaze.csv"])
    assert "1600x1200" in summary
    g = gaze(store, "pupil_cloud")
    assert [r["t_s"] for r in g] == pytest.approx([0.005, 0.010, 0.015])
    assert [(r["x"], r["y"]) for r in g[:2]] == [pytest.approx((0.5, 0.5)), pytest.approx((1.0, 0.0))]
    assert [r["valid"] for r in g] == [True, True, False]  # worn = 0
    assert units(store) == {}  # no scene_camera.json: no known scale


def test_pupil_cloud_scene_camera_gives_the_scale(tmp_path):
    import shutil

    d = tmp_path / "rec"
    shutil.copytree(FIX / "pupil_cloud", d)
    (d / "scene_camera.json").write_text(json.dumps(
        {"camera_matrix": [[891.6, 0, 812.3], [0, 891.2, 595.0], [0, 0, 1]], "distortion_coefficients": [[0] * 8]}))
    store = tmp_path / "s.duckdb"
    ingest(store, "pupil-cloud", [d])
    assert units(store)["rec"][:2] == pytest.approx((math.degrees(1600 / 891.6), 1200 / 1600))
    (d / "scene_camera.json").write_text('{"camera_matrix": "none"}')
    res = CliRunner().invoke(cli, ["ingest", "pupil-cloud", str(d), "--store", str(store)])
    assert res.exit_code == 2 and "scene_camera.json" in res.output and len(res.output.strip().splitlines()) == 1
    assert units(store)["rec"][:2] == pytest.approx((math.degrees(1600 / 891.6), 1200 / 1600))  # store untouched


def test_generic_units(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("t_ms,x,y\n0,0.1,0.2\n5,0.3,0.4\n")
    store = tmp_path / "s.duckdb"
    ingest(store, "generic-csv", [p], video_id="v")
    assert [r["t_s"] for r in gaze(store)] == pytest.approx([0.0, 0.005])
    q = tmp_path / "px.csv"
    q.write_text("t_s,x_px,y_px\n0,10,10\n")
    with pytest.raises(InputError, match="--video"):
        ingest(store, "generic-csv", [q], video_id="v")


def test_ego4d_cli_flip(tmp_path):
    p = tmp_path / "uid.csv"
    p.write_text("component_idx,component_timestamp_s,canonical_timestamp_s,world_index,confidence,norm_pos_x,norm_pos_y\n"
                 "0,0.0,0.0,0,1.0,0.2,0.9\n")
    store = tmp_path / "s.duckdb"
    res = CliRunner().invoke(cli, ["ingest", "ego4d", str(p), "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert gaze(store)[0]["y"] == pytest.approx(0.1)


def test_egtea_actions(tmp_path):
    store = tmp_path / "s.duckdb"
    d = FIX / "egtea_actions"
    ingest(store, "egtea-actions", [d / "train_split1.txt", d / "action_idx.txt"], video_id="OP01-R01-PastaSalad",
           allow_unknown_videos=True)
    with open_store(store, read_only=True) as s:
        acts = s.rows("SELECT * FROM actions ORDER BY t_start")
    assert [(a["t_start"], a["t_end"], a["label"]) for a in acts] == [(0.5, 2.5, "Open fridge"), (1002.316, 1004.005, "Cut tomato")]


@needs_data
def test_aria_schemas_agree_and_project(tmp_path):
    d = DATA / "aria_mps" / "gen1" / "mps_sample"
    store = tmp_path / "s.duckdb"
    ingest(store, "aria-mps", [d / "eye_gaze" / "eyegaze.csv"], video_id="legacy")
    ingest(store, "aria-mps", [d / "eye_gaze" / "generalized_eye_gaze.csv"], video_id="general")
    a, b = gaze(store, "legacy"), gaze(store, "general")
    assert len(a) == 123 and [r["x"] for r in a] == pytest.approx([r["x"] for r in b])
    assert a[1]["t_s"] == pytest.approx(0.1)
    yaw, pitch = 0.894797, 0.039713  # first row
    tx, ty = math.tan(yaw), math.tan(pitch)
    rho = math.hypot(tx, ty)
    s = 610 * math.atan(rho) / rho
    assert (a[0]["x"], a[0]["y"]) == pytest.approx(((703.5 - s * tx) / 1408, (703.5 - s * ty) / 1408))
    # the file's pitch is negative in 97 % of rows (gaze below straight ahead, as in manual tasks): +pitch is up,
    # so most of the gaze lands in the lower half of the image
    assert sum(r["y"] > 0.5 for r in a) / len(a) > 0.9
    # vergence: cyclopean tan(yaw) = mean of the eyes' tangents; a camera JSON overrides the model
    cam = tmp_path / "aria_camera.json"
    cam.write_text(json.dumps({"model": "pinhole", "f_px": 500, "cx": 700, "cy": 700, "width": 1400, "height": 1400}))
    ingest(store, "aria-mps", [d / "eye_gaze_vergence" / "generalized_gaze.csv", cam], video_id="verg")
    assert units(store)["legacy"][:2] == pytest.approx((math.degrees(1408 / 610), 1.0))  # the declared camera
    v = gaze(store, "verg")[0]
    tyaw = (math.tan(0.801510214805603) + math.tan(0.7736955881118774)) / 2
    assert v["x"] == pytest.approx((700 - 500 * tyaw) / 1400)
    assert v["y"] == pytest.approx((700 - 500 * math.tan(-0.020560525357723236)) / 1400)


@needs_data
def test_tobii_average_valid_eyes(tmp_path):
    path = DATA / "tobii_tx300" / "participant1_1.tsv"
    store = tmp_path / "s.duckdb"
    ingest(store, "tobii-tx300", [path])
    g = gaze(store)
    rows = list(csv.DictReader(path.open(), delimiter="\t"))
    assert len(g) == len(rows) == 651
    assert not g[0]["valid"]  # both eyes validity 4
    for i, r in enumerate(rows):
        lv, rv = int(r["LValidity"]) <= 1, int(r["RValidity"]) <= 1
        xs = [float(r[f"{e}GazePos2dx"]) for e, ok in (("L", lv), ("R", rv)) if ok]
        assert g[i]["valid"] == bool(xs)
        if xs:
            assert g[i]["x"] == pytest.approx(sum(xs) / len(xs))
    assert g[-1]["t_s"] == pytest.approx((int(rows[-1]["Time"]) - int(rows[0]["Time"])) / 1e6)


@needs_data
def test_eyelink_edf(tmp_path):
    pytest.importorskip("eyelinkio")
    store = tmp_path / "s.duckdb"
    ingest(store, "eyelink-edf", [DATA / "eyelink" / "test_raw.edf"])
    with open_store(store, read_only=True) as s:
        n, nv, t1, xmax = s.con.execute("SELECT count(*), sum(valid::INT), max(t_s), max(x) FROM gaze").fetchone()
    assert n == 66827 and 0.985 < nv / n < 0.995
    assert t1 == pytest.approx(66.826) and xmax == pytest.approx(1035 / 1920, abs=0.01)
    # the scale from the file's own validation (offsets in px and in degrees): 37.42 px per degree
    deg, aspect, source = units(store)["test_raw"]
    assert deg == pytest.approx(1920 / 37.42, abs=0.01) and aspect == pytest.approx(1080 / 1920)
    assert "validation" in source


@needs_data
def test_no_crash_on_any_shared_file(tmp_path):
    """Every shared file through every loader: ingested, or one InputError; never a traceback."""
    from streamgaze.plugins.manager import registry

    files = [p for p in DATA.rglob("*") if p.is_file()] + [DATA / "pupil_player"]
    runner = CliRunner()
    store = tmp_path / "s.duckdb"
    ours = {n for n, e in registry("gaze_loaders").items() if e.source.plugin == "builtin_loaders"}
    for fmt in sorted(ours):
        for f in files:
            res = runner.invoke(cli, ["ingest", fmt, str(f), "--store", str(store), "--video-id", "x"])
            assert res.exit_code in (0, 2), (fmt, f, res.output, res.exception)
            if res.exit_code == 2:
                assert len(res.output.strip().splitlines()) == 1, (fmt, f, res.output)


@needs_data
def test_bad_camera_geometry_is_one_line_and_leaves_the_store(tmp_path):
    """A camera file whose numbers cannot give an angular scale (zero, negative or non-numeric focal length or
    size, unknown lens model): exit 2, one line naming the file, the store as it was."""
    import hashlib
    import shutil

    store = tmp_path / "s.duckdb"
    ingest(store, "holoassist", [FIX / "holoassist" / "R001"])
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    holo = tmp_path / "holo"
    shutil.copytree(FIX / "holoassist", holo)
    intr = next(holo.rglob("Intrinsics.txt"))
    intr.write_text("0\t0\t448\t0\t500\t252\t0\t0\t1\t896\t504")
    aria = tmp_path / "aria"
    aria.mkdir()
    shutil.copy(DATA / "aria_mps" / "gen1" / "mps_sample" / "eye_gaze" / "eyegaze.csv", aria)
    cloud = tmp_path / "cloud"
    shutil.copytree(FIX / "pupil_cloud", cloud)
    (cloud / "scene_camera.json").write_text(json.dumps({"camera_matrix": [[-5, 0, 1], [0, 1, 1], [0, 0, 1]]}))
    cases = [("holoassist", holo / "R001", "Intrinsics.txt", None)]
    for cam in ({"f_px": 0}, {"f_px": "abc"}, {"model": "fish"}, {"width": -3}, {"cx": None}):
        cases.append(("aria-mps", aria / "eyegaze.csv", "aria_camera.json", cam))
    cases.append(("pupil-cloud", cloud, "scene_camera.json", None))
    for fmt, path, named, cam in cases:
        if cam is not None:
            (aria / "aria_camera.json").write_text(json.dumps(cam))
        res = CliRunner().invoke(cli, ["ingest", fmt, str(path), "--store", str(store)])
        assert res.exit_code == 2, (fmt, cam, res.output, res.exception)
        assert named in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert hashlib.sha256(store.read_bytes()).hexdigest() == before
