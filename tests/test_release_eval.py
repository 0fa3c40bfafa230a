"""`streamgaze eval` on a released StreamGaze folder with no store: a miniature release built from the demo in the
released layout (``dataset/qa/<task_id>.json``, ``dataset/videos/original_video/``, ``dataset/videos/gaze_viz_video/``),
evaluated against a loopback OpenAI-compatible server answering in free text; the bad inputs are one line, exit 2,
and leave no run folder."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_eval_runner import Server

from streamgaze.cli import cli
from streamgaze.eval.runner import read_predictions
from streamgaze.eval.score import score_run

NAME = "synthetic_s0"  # the demo's video id, the released file's name
MARK = (255, 0, 255)  # BGR magenta block in the gaze_viz video's top-left corner
MARK_PX = 96
ANSWERS = ["Answer: C", "I think a mug, so D"]
PRO_ANSWERS = ["Yes, not yet", "Nope"]


def _cli(args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(STREAMGAZE_PROGRESS="0", STREAMGAZE_STRICT_PLUGINS="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _write_gaze_viz(src: Path, dst: Path, keep: int | None = None) -> None:
    """The original's frames with a solid magenta block in the top-left corner (``keep``: only that many)."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    n = 0
    while keep is None or n < keep:
        ok, frame = cap.read()
        if not ok:
            break
        frame[:MARK_PX, :MARK_PX] = MARK
        out.write(frame)
        n += 1
    out.release()
    cap.release()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """ROOT/dataset/{qa,videos} in the released layout; ``video_path`` points nowhere, one item has two
    questions, one item says ``video`` instead of ``video_path``."""
    tmp = tmp_path_factory.mktemp("release")
    env = {**os.environ, "STREAMGAZE_PROGRESS": "0"}
    demo = tmp / "demo"
    for args in (["demo", "--minutes", "1", "--out", demo],
                 ["export", "streamgaze-json", "--qa", demo / "qa", "--out", tmp / "REL" / "dataset" / "qa"]):
        proc = subprocess.run([sys.executable, "-m", "streamgaze.cli", *map(str, args)], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    root = tmp / "REL"
    qa = root / "dataset" / "qa"
    for f in sorted(qa.glob("*.json")):
        items = json.loads(f.read_text())
        for it in items:
            it["video_path"] = f"/nonexistent/StreamGaze/dataset/videos/original_video/{NAME}.mp4"
        f.write_text(json.dumps(items, indent=1))
    # one item with two questions
    f = qa / "past_object_transition_prediction.json"
    items = json.loads(f.read_text())
    assert len(items) >= 2
    items[0]["questions"].append(items.pop(1)["questions"][0])
    f.write_text(json.dumps(items, indent=1))
    # an item that names its video with "video"
    f = qa / "present_object_identification_easy.json"
    items = json.loads(f.read_text())
    items[0]["video"] = items[0].pop("video_path")
    f.write_text(json.dumps(items, indent=1))
    videos = root / "dataset" / "videos"
    (videos / "original_video").mkdir(parents=True)
    shutil.copy(demo / "world" / "video.mp4", videos / "original_video" / f"{NAME}.mp4")
    _write_gaze_viz(demo / "world" / "video.mp4", videos / "gaze_viz_video" / f"{NAME}.mp4")
    n_q = n_items = 0
    for f in qa.glob("*.json"):
        for it in json.loads(f.read_text()):
            for q in it["questions"]:
                n_q += 1
                n_items += len(q.get("test_info") or []) or 1
    return {"root": root, "qa": qa, "videos": videos, "demo": demo, "n_questions": n_q, "n_items": n_items}


class FreeText(Server):
    """Answers in free-text shapes; records, per request, whether its frames carry the gaze_viz mark."""

    def __init__(self):
        super().__init__("key")
        self.n = 0
        self.marked: list[bool] = []

    def answer(self, body: dict) -> str:
        content = body["messages"][0]["content"]
        text = next(p["text"] for p in content if p["type"] == "text")
        images = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
        marks = []
        for url in images:
            img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
            corner = img[4:60, 4:60].reshape(-1, 3).mean(axis=0)
            marks.append(bool(np.abs(corner - np.array(MARK)).max() < 40))
        with self.lock:
            self.marked.append(bool(marks) and all(marks))
            self.n += 1
            k = self.n
        if "Options:" not in text:  # a proactive test point
            return PRO_ANSWERS[k % 2]
        return ANSWERS[k % 2]


def _eval(args, monkeypatch) -> tuple:
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FreeText() as srv:
        result = CliRunner().invoke(cli, ["eval", "--model", "openai:m", "--base-url", srv.base_url, "--frames", "2",
                                          "--concurrency", "4", *map(str, args)])
    return result, srv


def test_release_folder_without_store_none_and_overlay(release, tmp_path, monkeypatch):
    r = release
    result, srv = _eval(["--qa", r["qa"], "--videos", r["videos"], "--out", tmp_path / "none"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert srv.n == r["n_items"] and len(srv.marked) == r["n_items"]
    assert not any(srv.marked), "none mode sent frames of the gaze_viz video"
    rows = read_predictions(tmp_path / "none" / "predictions.jsonl")
    assert len({(x["question_id"], x["point_idx"]) for x in rows}) == r["n_items"] == len(rows)
    assert {x["response"] for x in rows} <= set(ANSWERS + PRO_ANSWERS)
    assert any(x["parse"] == "pattern" for x in rows) and any(x["parsed"] == "yes" for x in rows)
    assert all(len(x["frames"]) == 2 for x in rows)
    # the item with two questions: both asked
    assert {"past_object_transition_prediction-0-0", "past_object_transition_prediction-0-1"} <= {x["question_id"] for x in rows}
    s = score_run(tmp_path / "none")
    assert sum(t["n_questions"] for t in s["tasks"].values()) == r["n_questions"]
    assert all(t["missing"] == 0 for t in s["tasks"].values())

    # --benchmark ROOT finds dataset/qa and dataset/videos; overlay frames come from gaze_viz_video
    result, srv = _eval(["--benchmark", r["root"], "--gaze-prompt", "overlay", "--out", tmp_path / "overlay"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert srv.n == r["n_items"] and all(srv.marked), "overlay mode did not send the gaze_viz frames"
    info = json.loads((tmp_path / "overlay" / "run.json").read_text())
    assert info["videos_dir"] == str(r["videos"].resolve())


def test_overlay_with_a_store_draws_the_gaze_itself(release, tmp_path, monkeypatch):
    r = release
    result, srv = _eval(["--benchmark", r["root"], "--gaze-prompt", "overlay", "--store", r["demo"] / "store.duckdb",
                         "--out", tmp_path / "R"], monkeypatch)
    assert result.exit_code == 0, result.output
    assert srv.n == r["n_items"] and not any(srv.marked)
    # salience needs raw gaze: with the store it runs
    result, srv = _eval(["--benchmark", r["root"], "--gaze-prompt", "salience", "--store", r["demo"] / "store.duckdb",
                         "--out", tmp_path / "S"], monkeypatch)
    assert result.exit_code == 0, result.output


def _copy(release, tmp: Path) -> Path:
    root = tmp / "REL"
    shutil.copytree(release["root"], root)
    return root


def one_line_exit_2(proc, *needles) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


DEAD = "http://127.0.0.1:9/v1"  # nothing listens: a request sent would end in exit 1, not 2


def _mutate_json(root: Path, name: str, fn) -> None:
    f = root / "dataset" / "qa" / name
    f.write_text(json.dumps(fn(json.loads(f.read_text()))))


def _three_options(items):
    items[0]["questions"][0]["options"] = items[0]["questions"][0]["options"][:3]
    items[0]["questions"][0]["answer"] = "A"
    return items


def _bad_time(items):
    items[0]["questions"][0]["time_stamp"] = "12:xx"
    return items


def _no_questions(items):
    del items[1]["questions"]
    return items


def _extra_missing(items):
    for k in range(5):
        items.append({**items[0], "video_path": f"/nowhere/absent_{k}.mp4"})
    return items


BAD = {
    "not-a-list": (lambda root: (root / "dataset/qa/past_scene_recall.json").write_text('{"questions": []}'),
                   ["past_scene_recall.json", "JSON array"]),
    "no-questions": (lambda root: _mutate_json(root, "past_scene_recall.json", _no_questions),
                     ["past_scene_recall.json", "row 2", "item 1"]),
    "three-options": (lambda root: _mutate_json(root, "present_object_identification_hard.json", _three_options),
                      ["present_object_identification_hard.json", "item 0 question 0", "3 options", "have 4"]),
    "bad-time": (lambda root: _mutate_json(root, "past_scene_recall.json", _bad_time),
                 ["past_scene_recall.json", "item 0", "time_stamp", "12:xx"]),
    "missing-video": (lambda root: _mutate_json(root, "past_scene_recall.json", _extra_missing),
                      ["5 videos not found", "absent_0.mp4", "and 2 more", "--allow-missing"]),
    "unreadable-video": (lambda root: (root / f"dataset/videos/original_video/{NAME}.mp4").write_text("not a video\n"),
                         [f"{NAME}.mp4", "not a video"]),
}


@pytest.mark.parametrize("case", [*BAD, "missing-qa", "gaze-viz-mismatch", "salience-without-gaze"])
def test_bad_release_input_is_one_line_exit_2(release, tmp_path, case):
    root = _copy(release, tmp_path)
    out = tmp_path / "R"
    mode = "none"
    if case in BAD:
        make, needles = BAD[case]
        make(root)
    elif case == "missing-qa":
        shutil.rmtree(root / "dataset" / "qa")
        needles = ["qa"]
        proc = _cli(["eval", "--qa", root / "dataset" / "qa", "--videos", root / "dataset" / "videos", "--model",
                     "openai:m", "--base-url", DEAD, "--out", out], tmp_path)
        one_line_exit_2(proc, "no such QA folder")
        proc = _cli(["eval", "--benchmark", root, "--model", "openai:m", "--base-url", DEAD, "--out", out], tmp_path)
        one_line_exit_2(proc, str(root), "no qa folder")
        assert not out.exists()
        return
    elif case == "gaze-viz-mismatch":
        src = root / "dataset" / "videos" / "original_video" / f"{NAME}.mp4"
        _write_gaze_viz(src, root / "dataset" / "videos" / "gaze_viz_video" / f"{NAME}.mp4", keep=200)
        mode, needles = "overlay", ["gaze_viz", "does not match", f"{NAME}.mp4"]
    else:
        mode, needles = "salience", ["salience", "raw gaze", NAME]
    proc = _cli(["eval", "--benchmark", root, "--gaze-prompt", mode, "--model", "openai:m", "--base-url", DEAD,
                 "--out", out], tmp_path)
    one_line_exit_2(proc, *needles)
    assert not out.exists()


def test_allow_missing_records_missing_questions(release, tmp_path, monkeypatch):
    root = _copy(release, tmp_path)
    _mutate_json(root, "past_scene_recall.json", _extra_missing)
    # an existing run folder is left unchanged by the refusal
    out = tmp_path / "R"
    result, srv = _eval(["--benchmark", root, "--out", out], monkeypatch)
    assert result.exit_code == 2 and "5 videos not found" in result.output and srv.n == 0
    assert not out.exists()
    result, srv = _eval(["--benchmark", root, "--allow-missing", "--out", out], monkeypatch)
    assert result.exit_code == 0, result.output
    assert srv.n == release["n_items"]
    rows = read_predictions(out / "predictions.jsonl")
    missing = [x for x in rows if x["outcome"] == "missing"]
    assert len(missing) == 5 and all(x["missing_video"].startswith("absent_") for x in missing)
    s = score_run(out)["tasks"]["past_scene_recall"]
    assert s["missing"] == 5 and s["n"] == 5 + len(json.loads((release["qa"] / "past_scene_recall.json").read_text()))
    before = (out / "predictions.jsonl").read_bytes()
    # a refused rerun (no --allow-missing) leaves the run folder as it was
    result, srv = _eval(["--benchmark", root, "--out", out], monkeypatch)
    assert result.exit_code == 2 and srv.n == 0
    assert (out / "predictions.jsonl").read_bytes() == before


def test_streaming_from_a_release_folder(release, tmp_path, monkeypatch):
    result, srv = _eval(["--benchmark", release["root"], "--streaming", "--poll-s", "5", "--out", tmp_path / "R"],
                        monkeypatch)
    assert result.exit_code == 0, result.output
    rows = read_predictions(tmp_path / "R" / "stream.jsonl")
    assert rows and srv.n == len(rows)
    n_pro = sum(len(json.loads(f.read_text())) for f in release["qa"].glob("proactive_*.json"))
    assert len({x["question_id"] for x in rows}) == n_pro
