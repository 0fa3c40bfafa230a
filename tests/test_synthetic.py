"""The synthetic world: deterministic, in the Pupil Player format, and its truth holds what later stages need."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from streamgaze.demo.synthetic import PUPIL_HEADER, make_world, true_gazed_object


def _frame_of(truth, t):
    return min(int(round(t * truth["video"]["fps"])), truth["video"]["n_frames"] - 1)


def test_deterministic_and_seeded(small_world, tmp_path):
    again = make_world(tmp_path / "again", seed=1, minutes=0.75, video=False)
    for name in ("gaze", "world_timestamps", "actions", "truth"):
        assert getattr(again, name).read_bytes() == getattr(small_world, name).read_bytes(), name
    assert not again.video.exists()
    other = make_world(tmp_path / "other", seed=2, minutes=0.75, video=False)
    assert other.gaze.read_bytes() != small_world.gaze.read_bytes()
    assert other.truth.read_bytes() != small_world.truth.read_bytes()
    assert other.video_id == "synthetic_s2" and small_world.video_id == "synthetic_s1"


def test_deterministic_across_processes(small_world, tmp_path):
    import subprocess
    import sys

    code = ("import sys; from streamgaze.demo.synthetic import make_world; "
            "make_world(sys.argv[1], seed=1, minutes=0.75, video=False)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")], check=True,
                   env={**__import__("os").environ, "PYTHONHASHSEED": "123"})
    for name in ("gaze_positions.csv", "world_timestamps.csv", "actions.csv", "truth.json"):
        assert (tmp_path / "p" / name).read_bytes() == (small_world.root / name).read_bytes(), name


def test_video_readable(small_world, small_truth):
    cap = cv2.VideoCapture(str(small_world.video))
    assert cap.isOpened()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert n == small_truth["video"]["n_frames"] == 45 * 24
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 480
    ok, first = cap.read()
    assert ok and first.mean() > 40 and first.std() > 10  # not black, not flat
    cap.set(cv2.CAP_PROP_POS_FRAMES, n - 1)
    ok, last = cap.read()
    assert ok and np.abs(first.astype(int) - last.astype(int)).mean() > 1
    cap.release()


def test_truth_shape(small_truth):
    t = small_truth
    assert t["version"] == 1 and t["seed"] == 1 and 0 < t["fov_radius"] < 0.5
    assert 12 <= len(t["objects"]) <= 20
    names = [o["name"] for o in t["objects"]]
    assert len(set(names)) == len(names)
    for a in names:  # no name is a whole-word sub-phrase of another
        for b in names:
            assert a == b or f" {a} " not in f" {b} "
    assert {"sink", "stove"} <= set(names)
    for o in t["objects"]:
        assert set(o["attributes"]) == {"color", "shape", "material"}
    n = t["video"]["n_frames"]
    assert len(t["frames"]["t_s"]) == n and all(len(b) == n for b in t["frames"]["boxes"].values())
    g = t["gaze"]
    assert len({len(g[k]) for k in ("t_s", "x", "y", "valid", "target", "event")}) == 1
    assert set(g["event"]) == {"fixation", "saccade", "blink", "glance"}


def test_pupil_format(small_world, small_truth):
    lines = small_world.gaze.read_text().splitlines()
    assert lines[0] == PUPIL_HEADER
    rows = list(csv.DictReader(lines))
    assert len(rows) == len(small_truth["gaze"]["t_s"])
    assert all(len(r) == 21 for r in rows[:50])
    ts = small_world.world_timestamps.read_text().splitlines()
    assert ts[0] == "# timestamps [seconds],pts"
    t0 = float(ts[1].split(",")[0])
    assert len(ts) - 1 == small_truth["video"]["n_frames"] and 1000 <= t0 <= 5000
    g = small_truth["gaze"]
    checked = 0
    for i in range(0, len(rows), 7):
        r = rows[i]
        assert abs(float(r["gaze_timestamp"]) - t0 - g["t_s"][i]) < 1e-4
        assert int(r["world_index"]) == _frame_of(small_truth, g["t_s"][i])
        conf = float(r["confidence"])
        if g["valid"][i]:
            assert conf >= 0.6
            assert abs(float(r["norm_pos_x"]) - g["x"][i]) < 1e-3
            assert abs(1 - float(r["norm_pos_y"]) - g["y"][i]) < 1e-3  # bottom-left origin
            checked += 1
        else:
            assert conf < 0.6
    assert checked > 100


def test_blinks(small_truth):
    g = small_truth["gaze"]
    valid = np.array(g["valid"])
    runs, run = [], 0
    for v in valid:
        if not v:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert len(runs) >= 2
    assert all(10 <= r <= 40 for r in runs)  # ~100-300 ms at 120 Hz
    assert all(x is None for x, v in zip(g["x"], g["valid"]) if not v)


def test_dwells_inside_frame_and_on_target(small_truth):
    t = small_truth
    g = t["gaze"]
    dwells = t["dwells"]
    assert 4 <= len(dwells)
    gs = np.array(g["t_s"])
    for d in dwells:
        assert d["t_end"] - d["t_start"] >= 2.5
        f0, f1 = _frame_of(t, d["t_start"]), _frame_of(t, d["t_end"])
        boxes = t["frames"]["boxes"][d["object"]][f0:f1 + 1]
        assert all(b is not None and 0 < b[0] and b[2] < 1 and 0 < b[1] and b[3] < 1 for b in boxes)
        assert true_gazed_object(t, d["t_start"], d["t_end"]) == d["object"]
        sel = np.flatnonzero((gs >= d["t_start"]) & (gs < d["t_end"]))
        for i in sel[::5]:
            if g["valid"][i]:
                b = t["frames"]["boxes"][d["object"]][_frame_of(t, gs[i])]
                assert b[0] <= g["x"][i] <= b[2] and b[1] <= g["y"][i] <= b[3]
    starts = [d["t_start"] for d in dwells]
    assert starts == sorted(starts)
    assert all(a["t_end"] <= b["t_start"] for a, b in zip(dwells, dwells[1:]))


def test_never_gazed_objects_are_visible(small_truth):
    t = small_truth
    gazed = {d["object"] for d in t["dwells"]}
    targets = {x for x in t["gaze"]["target"] if x}
    for oid in t["never_gazed"]:
        assert oid not in gazed and oid not in targets
        assert any(b is not None for b in t["frames"]["boxes"][oid])


def test_actions_follow_gaze(small_world, small_truth):
    t = small_truth
    names = {o["id"]: o["name"] for o in t["objects"]}
    lines = small_world.actions.read_text().splitlines()
    assert lines[0] == "t_start,t_end,label" and len(lines) - 1 == len(t["actions"]) >= 2
    acts = t["actions"]
    assert all(a["t_end"] <= b["t_start"] for a, b in zip(acts, acts[1:]))
    for a in acts:
        assert 2.0 <= a["t_end"] - a["t_start"] <= 8.0 + 1e-6
        # the action's object was being dwelt on 1.5-3 s before it starts
        lead = [d for d in t["dwells"] if a["label"].endswith(" " + names[d["object"]])
                and 1.5 - 1e-6 <= a["t_start"] - d["t_start"] <= 3.0 + 1e-3]
        assert lead, a


def test_camera_pans(small_truth):
    boxes = small_truth["frames"]["boxes"]
    changes = sum(1 for b in boxes.values() for p, q in zip(b, b[1:]) if (p is None) != (q is None))
    assert changes >= 2  # objects enter and leave the frame
    # smooth head motion: a visible box moves at most a few pixels per frame
    for b in boxes.values():
        for p, q in zip(b, b[1:]):
            if p is not None and q is not None and 0 < p[0] and q[0] > 0 and p[2] < 1 and q[2] < 1:
                assert abs(p[0] - q[0]) * 640 < 4
