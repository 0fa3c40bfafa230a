"""`streamgaze audit run`: a clean run passes; one planted late frame, late gaze sample or shifted clip is found,
and nothing else; the gaze shown never comes from after a frame (the overlay, the scanpath text)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_eval_runner import FPS, N_ITEMS, Server, lines, make_video, write_qa, world  # noqa: F401  (fixture)

from streamgaze.cli import cli
from streamgaze.eval.audit_run import audit_run
from streamgaze.eval.frames import VideoContext
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.gaze.overlay import GazeTrack, sample_at
from streamgaze.store import open_store


def eval_cli(world: Path, out: str, url: str, mode: str):
    return CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "openai:m", "--base-url", url,
                                    "--frames", "4", "--gaze-prompt", mode, "--out", str(world / out)])


def test_clean_runs_pass_and_eval_prints_the_verdict(world):
    with Server("key") as srv:
        for mode in ("none", "overlay", "salience", "scanpath-text"):
            res = eval_cli(world, f"R-{mode}", srv.base_url, mode)
            assert res.exit_code == 0, res.output
            assert f"audit: {N_ITEMS} requests checked, none showed a frame or gaze after its question time" in res.output
            result = audit_run(world / f"R-{mode}")
            assert result == {"checked": N_ITEMS, "leaks": [], "unverified": {}}
    rows = lines(world / "R-overlay" / "predictions.jsonl")
    assert all(r["clip"] is not None and r["frames"] for r in rows)
    assert all(r["gaze_until"] is not None for r in rows if r["frames"][0] < 5.0)  # gaze is valid before 5 s only
    assert all(r["gaze_until"] is None for r in lines(world / "R-none" / "predictions.jsonl"))


def _plant(run: Path, question_id: str, point_idx: int, **change) -> None:
    path = run / "predictions.jsonl"
    rows = lines(path)
    for r in rows:
        if r["question_id"] == question_id and r["point_idx"] == point_idx:
            r.update(change)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_each_planted_leak_is_found_and_nothing_else(world):
    with Server("key") as srv:
        assert eval_cli(world, "R", srv.base_url, "overlay").exit_code == 0
    clean = (world / "R" / "predictions.jsonl").read_text()
    cases = [
        ("psr-1", -1, {"frames": [0.0, 4.0, 8.1]}, "frame at 8.1000 s after the question time 8.0000 s"),
        ("oie-1", -1, {"gaze_until": 8.02}, "gaze sample at 8.020000 s after the question time 8.0000 s"),
        ("psr-2", -1, {"clip": [1.0, 6.0]}, "clip [1.0, 6.0] is not the question's [0.0, 6.0]"),
        ("gta-1", 1, {"frames": [0.0, 4.2]}, "frame at 4.2000 s after the question time 4.0000 s"),
    ]
    for qid, point, change, reason in cases:
        (world / "R" / "predictions.jsonl").write_text(clean)
        _plant(world / "R", qid, point, **change)
        result = audit_run(world / "R")
        assert result["leaks"] == [{"question_id": qid, "point_idx": point, "reason": reason}]
        res = CliRunner().invoke(cli, ["audit", "run", str(world / "R"), "--json"])
        assert res.exit_code == 1 and json.loads(res.output)["leaks"][0]["reason"] == reason


def test_overlay_takes_the_sample_at_or_before_the_frame(tmp_path, monkeypatch):
    """Gaze 4 ms after each frame time is nearer than the one 96 ms before: the nearest-sample rule would show
    gaze from after the question's last frame. The run records and the audit confirm it never does."""
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    make_video(tmp_path / "v1.mp4")
    with open_store(tmp_path / "store.duckdb") as s, s.transaction():
        s.insert("videos", pa.table({"video_id": ["v1"], "dataset": ["t"], "path": [str(tmp_path / "v1.mp4")],
                                     "fps": [FPS], "width": [64], "height": [48], "duration_s": [10.0]}))
        t = np.arange(0, 100) / FPS + 0.004
        s.insert("gaze", pa.table({"video_id": ["v1"] * len(t), "t_s": t, "x": np.full(len(t), 0.5),
                                   "y": np.full(len(t), 0.5), "valid": np.ones(len(t), bool)}))
    write_qa(tmp_path / "qa")
    with Server("key") as srv:
        run_eval(tmp_path / "qa", EvalConfig("openai:m", tmp_path / "R", base_url=srv.base_url, frames=4,
                                             gaze_prompt="overlay"))
    rows = lines(tmp_path / "R" / "predictions.jsonl")
    for r in rows:
        assert r["gaze_until"] <= r["frames"][-1] and r["frames"][-1] - r["gaze_until"] < 1 / FPS
    assert audit_run(tmp_path / "R")["leaks"] == []


def test_scanpath_unit_running_past_the_question_is_placed_from_earlier_samples():
    t = np.arange(0, 10, 0.1)
    x = np.where(t < 5.0, 0.2, 0.8)  # the gaze moves at 5 s, inside the episode [3, 7]
    track = GazeTrack(t, x, np.full(len(t), 0.5))
    ctx = VideoContext("v", Path("none.mp4"), FPS, 64, 48, 100, track,
                       episodes=np.array([[0.5, 2.0, 0.2, 0.5], [3.0, 7.0, 0.5, 0.5]]))
    units = ctx.scanpath("episodes", 0.0, 5.0)
    assert units[0] == (0.5, 2.0, 0.2, 0.5)
    a, b, ux, _ = units[1]
    assert (a, b) == (3.0, 5.0) and abs(ux - np.mean(x[(t >= 3.0) & (t <= 5.0)])) < 1e-12
    assert ctx.gaze_until("scanpath-text", [], (0.0, 5.0), units) == 5.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40, unique=True),
       st.lists(st.floats(-1, 101, allow_nan=False), min_size=1, max_size=20),
       st.floats(0.001, 5))
def test_sample_at_is_the_latest_sample_not_after_the_time(samples, times, max_dt):
    gt = np.array(sorted(samples))
    idx, found = sample_at(gt, times, max_dt)
    for t, i, ok in zip(times, idx, found):
        earlier = gt[gt <= t + 1e-9]
        expect = len(earlier) > 0 and t - earlier[-1] <= max_dt + 1e-9
        assert bool(ok) == expect
        if ok:
            assert gt[i] == earlier[-1]
