"""Bad input for every ingest format, through the command line: exit code 2, one ``Error: `` line naming the file,
no traceback, no raw control character, and the store file byte-identical.

Every case is one `streamgaze ingest` process. The processes are started together (a thread pool, once per
module) so the file stays fast on a busy machine; each test then checks its own case's result.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELD = "held"  # the video the starting store holds (its gaze)
#: only the built-in plugins: a test package another test installs into the environment cannot break these runs
BUILTIN = ",".join(f"builtin_{n}" for n in ("compat", "detectors", "labellers", "loaders", "models", "suites", "tasks",
                                            "validators"))
ENV = {**os.environ, "STREAMGAZE_PROGRESS": "0", "STREAMGAZE_STRICT_PLUGINS": "1", "STREAMGAZE_LOAD_PLUGINS": BUILTIN}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ESC = "\x1b[31mred"
DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 20 + "a" * 200_000  # over Python csv's 131,072-character field limit


# --- good inputs, as (file name, text) or a function writing into a folder -------------------------------------


def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text), delimiter=delimiter)]


GENERIC = "t_s,x,y\n0.0,0.5,0.5\n0.1,0.6,0.5\n0.2,0.7,0.5\n"
ACTIONS = "t_start,t_end,label\n0.5,1.0,cut tomato\n2.0,3.0,open fridge\n"
EGO4D = "canonical_timestamp_s,confidence,norm_pos_x,norm_pos_y\n0.0,1,0.5,0.5\n0.1,1,0.6,0.5\n0.2,1,0.7,0.5\n"
META = _csv([["video_name", "episode_start_time", "episode_end_time", "representative_object"],
             [f"{HELD}.mp4", "1.0", "2.0", "['cup']"], [f"{HELD}.mp4", "3.0", "4.0", "['knife']"]])

#: format -> (main file name, good text or source path, delimiter or None for not CSV-with-header, time column)
CSV_FORMATS = {
    "generic-csv": ("g.csv", GENERIC, ",", "t_s"),
    "actions-csv": ("a.csv", ACTIONS, ",", "t_start"),
    "ego4d-gaze": ("v.csv", EGO4D, ",", "canonical_timestamp_s"),
    "pupil-player": ("gaze_positions.csv", DATA / "pupil_player" / "gaze_positions.csv", ",", "gaze_timestamp"),
    "pupil-cloud": ("gaze.csv", FIX / "pupil_cloud" / "gaze.csv", ",", "timestamp [ns]"),
    "aria-mps": ("eyegaze.csv", DATA / "aria_mps" / "gen1" / "mps_sample" / "eye_gaze" / "eyegaze.csv", ",",
                 "tracking_timestamp_us"),
    "tobii-tx300": ("p.tsv", DATA / "tobii_tx300" / "participant1_1.tsv", "\t", "Time"),
    "streamgaze-metadata": ("meta.csv", META, ",", "episode_start_time"),
}
JSON_FORMATS = {
    "egoexolearn-actions": ("e.json", FIX / "egoexolearn_actions" / "bee9d8dc-ac78-11ee-819f-80615f12b59e.json"),
    "holoassist-actions": ("h.json", FIX / "holoassist_actions" / "data-annotation-sample.json"),
}
#: extra arguments per format (the actions go to the held video; HoloAssist's JSON is filtered by its video id)
ARGS = {"actions-csv": ["--video-id", HELD], "egoexolearn-actions": ["--video-id", HELD],
        "holoassist-actions": ["--video-id", "R007-7July-DSLR", "--allow-unknown-videos"],
        "egtea-actions": ["--video-id", "OP01-R01-PastaSalad", "--allow-unknown-videos"]}


def _text(src) -> str:
    return src.read_text(encoding="utf-8") if isinstance(src, Path) else src


# --- mutations of CSV files with a header ----------------------------------------------------------------------


def _set(text: str, delim: str, col: str, row: int, value: str) -> str:
    rows = _rows(text, delim)
    rows[row][rows[0].index(col)] = value
    return _csv(rows, delim)


def _backwards(text: str, delim: str, col: str) -> str:
    rows = _rows(text, delim)
    i = rows[0].index(col)
    v = rows[1][i]
    rows[2][i] = str(int(v) - 1000) if v.lstrip("-").isdigit() else str(float(v) - 1000)
    return _csv(rows, delim)


def csv_case(fmt: str, kind: str, d: Path) -> list[str]:
    name, src, delim, tcol = CSV_FORMATS[fmt]
    good = _text(src)
    p = d / name
    b = good.encode()
    header = good.splitlines(True)[0]
    data = {
        "empty": b"",
        "header_only": header.encode(),
        "wrong_columns": b"foo,bar\n1,2\n",
        "latin1": b.replace(b"\n", "\n\u00e9t\u00e9".encode("latin-1"), 2),
        "binary": b"\x00\x01\x02\xff" * 64 + b,
        "nan": _set(good, delim, tcol, 1, "nan").encode(),
        "backwards": _backwards(good, delim, tcol).encode(),
        "oversized": _set(good, delim, tcol, 1, HUGE).encode(),
        "esc": _set(good, delim, tcol, 1, ESC).encode(),
    }
    if fmt == "actions-csv":  # actions need no order: "backwards" is an end before its start
        data["backwards"] = _set(good, delim, "t_end", 1, "0.1").encode()
    if fmt == "streamgaze-metadata":
        data["backwards"] = _set(good, delim, "episode_end_time", 1, "0.5").encode()
    if kind != "missing":
        p.write_bytes(data[kind])
    return [fmt, str(p)]


def json_case(fmt: str, kind: str, d: Path) -> list[str]:
    name, src = JSON_FORMATS[fmt]
    good = json.loads(src.read_text(encoding="utf-8"))
    p = d / name

    def first(obj):  # the first record carrying times (an EgoExoLearn segment, a fine-grained HoloAssist event)
        if fmt == "egoexolearn-actions":
            return obj[0]
        return next(e for e in obj[0]["events"] if e["label"] == "Fine grained action")

    def mutate(**fields) -> bytes:
        obj = json.loads(json.dumps(good))
        first(obj).update(fields)
        return json.dumps(obj, allow_nan=True).encode()

    data = {
        "empty": b"",
        "wrong_columns": (json.dumps([{"foo": 1}]) if fmt == "egoexolearn-actions"
                          else json.dumps([{"video_name": "R007-7July-DSLR", "events": [
                              {"label": "Fine grained action", "attributes": {"Verb": "a", "Noun": "b"}}]}])).encode(),
        "latin1": json.dumps(good, ensure_ascii=False).replace("e", "\u00e9", 1).encode("latin-1", "replace"),
        "binary": b"\x00\x01\x02\xff" * 64,
        "nan": mutate(start=float("nan")),
        "backwards": mutate(start=50.0, end=10.0),
        "deep_json": DEEP.encode(),
        "oversized": mutate(start=HUGE),
        "esc": mutate(start=ESC),
    }
    if kind != "missing":
        p.write_bytes(data[kind])
    return [fmt, str(p)]


def holo_case(kind: str, d: Path) -> list[str]:
    root = d / "R001"
    shutil.copytree(FIX / "holoassist" / "R001", root)
    ex = root / "Export_py"
    eyes, intr, timing = ex / "Eyes" / "Eyes_sync.txt", ex / "Video" / "Intrinsics.txt", ex / "Video" / "VideoMp4Timing.txt"
    lines = eyes.read_text().splitlines(True)

    def field(line: str, i: int, value: str) -> str:
        parts = line.rstrip("\n").split("\t")
        parts[i] = value
        return "\t".join(parts) + "\n"

    if kind == "missing":
        eyes.unlink()
    elif kind == "empty":
        eyes.write_bytes(b"")
    elif kind == "wrong_columns":
        eyes.write_text("".join(line.rsplit("\t", 2)[0] + "\n" for line in lines))
    elif kind == "latin1":
        intr.write_bytes(intr.read_bytes() + "\n\u00e9\n".encode("latin-1"))
    elif kind == "binary":
        eyes.write_bytes(b"\x00\x01" * 64 + eyes.read_bytes())
    elif kind == "nan":
        eyes.write_text(field(lines[0], 1, "nan") + "".join(lines[1:]))
    elif kind == "backwards":
        eyes.write_text(lines[0] + field(lines[1], 1, "1") + "".join(lines[2:]))
    elif kind == "timing_text":
        timing.write_text("start of video\n")
    elif kind == "timing_empty":
        timing.write_bytes(b"")
    elif kind == "oversized":
        eyes.write_text(field(lines[0], 2, HUGE) + "".join(lines[1:]))
    elif kind == "esc":
        eyes.write_text(field(lines[0], 2, ESC) + "".join(lines[1:]))
    return ["holoassist", str(root)]


def other_case(fmt: str, kind: str, d: Path) -> list[str]:
    if fmt == "egtea-smi":
        good = (FIX / "egtea_v1.txt").read_text()
        lines = good.splitlines(True)
        p = d / "egtea.txt"

        def at(i: int, col: int, value: str) -> str:
            parts = lines[i].rstrip("\n").split("\t")
            parts[col] = value
            return "".join(lines[:i]) + "\t".join(parts) + "\n" + "".join(lines[i + 1:])

        data = {"empty": "", "header_only": "".join(lines[:34]), "wrong_columns": "".join(lines[:34]) + "1\t2\n",
                "latin1": None, "binary": None, "nan": at(34, 5, "nan"), "backwards": at(35, 5, "-5"),
                "oversized": at(34, 3, HUGE), "esc": at(34, 3, ESC)}
        if kind == "latin1":
            p.write_bytes(good.encode().replace(b"\n", b"\xe9\n", 40))
        elif kind == "binary":
            p.write_bytes(b"\x00" * 64 + good.encode())
        elif kind != "missing":
            p.write_text(data[kind])
        return [fmt, str(p)]
    if fmt == "egtea-actions":
        split, names = d / "train_split1.txt", d / "action_idx.txt"
        shutil.copy(FIX / "egtea_actions" / "train_split1.txt", split)
        shutil.copy(FIX / "egtea_actions" / "action_idx.txt", names)
        good = split.read_text()
        if kind == "missing":
            split.unlink()
        elif kind == "empty":
            split.write_bytes(b"")
        elif kind == "wrong_columns":
            split.write_text("just-a-name\n")
        elif kind == "latin1":  # the action names file
            names.write_bytes("Ouvrir le r\u00e9frig\u00e9rateur 1\n".encode("latin-1"))
        elif kind == "binary":
            split.write_bytes(b"\x00\x01" * 64)
        elif kind == "nan":
            split.write_text(good.replace(" 2 1 1", " nan 1 1", 1))
        elif kind == "oversized":
            split.write_text(good.replace(" 2 1 1", f" {HUGE} 1 1", 1))
        elif kind == "esc":
            split.write_text(good.replace(" 2 1 1", f" {ESC} 1 1", 1))
        return [fmt, str(split), str(names)]
    if fmt == "egoexolearn-npy":
        p = d / "v.npy"
        if kind == "empty":
            p.write_bytes(b"")
        elif kind == "wrong_columns":
            import numpy as np

            np.save(p, np.zeros((5, 2)))
        elif kind == "binary":
            p.write_bytes(b"\x00\x93NUMPY" + b"\x00\xff" * 64)
        elif kind == "latin1":
            p.write_bytes("x,y,valid\n\u00e9,1,1\n".encode("latin-1"))
        return [fmt, str(p)]
    if fmt == "eyelink-edf":
        p = d / "r.edf"
        if kind == "empty":
            p.write_bytes(b"")
        elif kind == "binary":
            p.write_bytes(b"\x00\x01\x02\xff" * 256)
        elif kind == "latin1":
            p.write_bytes("SR_RESEARCH \u00e9\n".encode("latin-1"))
        elif kind == "esc":
            p.write_bytes(f"** {ESC} EDF\n".encode())
        return [fmt, str(p)]
    if fmt == "aria-camera":  # aria-mps with a bad aria_camera.json beside the CSV
        csv_path = d / "eyegaze.csv"
        shutil.copy(CSV_FORMATS["aria-mps"][1], csv_path)
        cam = d / "aria_camera.json"
        cam.write_text({"list": "[1, 2]", "number": "42", "deep_json": DEEP, "nan": '{"f_px": NaN}',
                        "latin1": None, "esc": json.dumps({"model": ESC})}[kind] or "")
        if kind == "latin1":
            cam.write_bytes('{"model": "\u00e9"}'.encode("latin-1"))
        return ["aria-mps", str(csv_path), str(cam)]
    raise AssertionError(fmt)


COMMON = ["missing", "empty", "wrong_columns", "latin1", "binary", "nan", "backwards", "oversized", "esc"]
CASES: list[tuple[str, str]] = []
for _fmt in CSV_FORMATS:
    CASES += [(_fmt, k) for k in COMMON[:2] + ["header_only"] + COMMON[2:]]
for _fmt in JSON_FORMATS:
    CASES += [(_fmt, k) for k in COMMON + ["deep_json"]]
CASES += [("holoassist", k) for k in COMMON + ["timing_text", "timing_empty"]]
CASES += [("egtea-smi", k) for k in COMMON[:2] + ["header_only"] + COMMON[2:]]
CASES += [("egtea-actions", k) for k in COMMON if k != "backwards"]
CASES += [("egoexolearn-npy", k) for k in ("missing", "empty", "wrong_columns", "binary", "latin1")]
CASES += [("eyelink-edf", k) for k in ("missing", "empty", "binary", "latin1", "esc")]
CASES += [("aria-camera", k) for k in ("list", "number", "deep_json", "nan", "latin1", "esc")]
CASES += [("aria-mps", "too_few_columns")]


def make_case(fmt: str, kind: str, d: Path) -> list[str]:
    if fmt == "aria-mps" and kind == "too_few_columns":
        p = d / "eyegaze.csv"
        p.write_text("tracking_timestamp_us,yaw_rads_cpf\n1,0.1\n")
        return [fmt, str(p)]
    if fmt in CSV_FORMATS:
        return csv_case(fmt, kind, d)
    if fmt in JSON_FORMATS:
        return json_case(fmt, kind, d)
    if fmt == "holoassist":
        return holo_case(kind, d)
    return other_case(fmt, kind, d)


def _cli(args: list[str], store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", "ingest", *args, "--store", str(store)],
                          capture_output=True, text=True, errors="backslashreplace", env=ENV, timeout=300)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case's (store sha256 before, after, the process, the file it should name), run in parallel."""
    base = tmp_path_factory.mktemp("fuzz")
    good = base / "good.csv"
    good.write_text(GENERIC)
    store0 = base / "store0.duckdb"
    res = _cli(["generic-csv", str(good), "--video-id", HELD], store0)
    assert res.returncode == 0, res.stderr

    def one(case):
        fmt, kind = case
        d = base / f"{fmt}-{kind}"
        d.mkdir()
        args = make_case(fmt, kind, d) + ARGS.get(fmt, [])
        store = d / "s.duckdb"
        shutil.copy(store0, store)
        before = hashlib.sha256(store.read_bytes()).hexdigest()
        proc = _cli(args, store)
        return before, hashlib.sha256(store.read_bytes()).hexdigest(), proc, args

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(CASES, pool.map(one, CASES)))


@pytest.mark.parametrize("case", CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_bad_input_is_one_line(results, case):
    before, after, proc, args = results[case]
    err_lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
    assert len(err_lines) == 1 and err_lines[0].startswith("Error: "), proc.stderr
    names = [Path(a).name for a in args[1:] if not a.startswith("-")] + ["Eyes_sync.txt", "Intrinsics.txt",
                                                                        "VideoMp4Timing.txt", "action_idx.txt"]
    assert any(n in err_lines[0] for n in names), err_lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not CONTROL.search(proc.stderr + proc.stdout), repr(proc.stderr)
    assert len(err_lines[0]) < 2200
    assert before == after, "store changed"


def test_case_count():
    print(f"{len(CASES)} fuzz cases")
    assert len(CASES) >= 100


def test_ivt_flow_names_a_missing_video(tmp_path):
    d = tmp_path / "rec"
    shutil.copytree(DATA / "pupil_player", d, ignore=shutil.ignore_patterns("LICENSE*"))
    store = tmp_path / "s.duckdb"
    assert _cli(["pupil-player", str(d)], store).returncode == 0
    (d / "world.mp4").unlink()
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    proc = subprocess.run([sys.executable, "-m", "streamgaze.cli", "fixations", "--detector", "ivt_flow", "--store",
                           str(store)], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "world.mp4" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
