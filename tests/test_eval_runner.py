"""The eval runner against a real loopback OpenAI-compatible server: frames and prompt sent, hidden-key model
scores 1.0, refusals score 0.0, 429/500 retried, a killed run resumes to exactly one row per item."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.eval import prompts
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.eval.score import score_run
from streamgaze.store import open_store

FPS = 10.0
N_FRAMES = 100
W, H = 64, 48


def make_video(path: Path) -> None:
    """Frame i is a flat grey of level 2*i, so a server can tell which frame it got."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(N_FRAMES):
        writer.write(np.full((H, W, 3), 2 * i, dtype=np.uint8))
    writer.release()


def make_store(path: Path, video: Path) -> None:
    with open_store(path) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": ["v1"], "dataset": ["test"], "path": [str(video)], "fps": [FPS],
                                      "width": [W], "height": [H], "duration_s": [N_FRAMES / FPS]}))
        t = np.arange(0, N_FRAMES / FPS, 0.02)
        st.insert("gaze", pa.table({"video_id": ["v1"] * len(t), "t_s": t, "x": np.full(len(t), 0.5),
                                    "y": np.full(len(t), 0.5), "valid": t < 5.0}))


MCQ = [
    {"id": "psr-1", "task": "past_scene_recall", "family": "past", "video_id": "v1",
     "question": "Which object did the user see first?", "options": ["cup", "knife", "bowl", "plate"],
     "answer": "C", "answer_text": "bowl", "time_s": 8.0, "clip": [0.0, 8.0], "evidence": {}},
    {"id": "psr-2", "task": "past_scene_recall", "family": "past", "video_id": "v1",
     "question": "Which object was on the table?", "options": ["spoon", "mug", "pan", "lid"],
     "answer": "B", "answer_text": "mug", "time_s": 6.0, "clip": [0.0, 6.0], "evidence": {}},
    {"id": "oie-1", "task": "present_object_identification_easy", "family": "present", "video_id": "v1",
     "question": "What is the user looking at now?", "options": ["fork", "tray", "jar", "cup"],
     "answer": "D", "answer_text": "cup", "time_s": 8.0, "clip": [3.0, 8.0], "evidence": {}},
]
PRO = [
    {"id": "gta-1", "task": "proactive_gaze_triggered_alert", "family": "proactive", "video_id": "v1",
     "question": "Tell me when I look at the mug.", "options": [], "answer": "", "answer_text": "",
     "time_s": 1.0, "clip": [0.0, 1.0], "evidence": {"target": "mug"},
     "test_points": [{"t_s": 2.0, "expected": "no"}, {"t_s": 4.0, "expected": "yes"}, {"t_s": 6.0, "expected": "no"}]},
]
N_ITEMS = len(MCQ) + sum(len(q["test_points"]) for q in PRO)


def write_qa(qa: Path, questions=MCQ + PRO) -> None:
    qa.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list] = {}
    for q in questions:
        by_task.setdefault(q["task"], []).append(q)
    for task, qs in by_task.items():
        (qa / f"{task}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))


class Server:
    """A loopback /v1/chat/completions answering in the OpenAI response shape."""

    def __init__(self, behaviour: str = "key", fail: list[int] | None = None, delay_s: float = 0.0):
        self.behaviour = behaviour
        self.fail = list(fail or [])  # status codes to return, in order, before answering normally
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.key = {q["question"]: q["answer"] for q in MCQ}
        self.points = {q["question"]: q["test_points"] for q in PRO}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    status = outer.fail.pop(0) if outer.fail else 200
                if outer.delay_s:
                    import time

                    time.sleep(outer.delay_s)
                if status != 200:
                    data = json.dumps({"error": {"message": "injected", "type": "x", "code": status}}).encode()
                else:
                    text = outer.answer(body)
                    data = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": text}}],
                                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, body: dict) -> str:
        if self.behaviour == "refuse":
            return "I'm sorry, I cannot determine that from the video."
        content = body["messages"][0]["content"]
        text = next(p["text"] for p in content if p["type"] == "text")
        for question, letter in self.key.items():
            if f"Question: {question}\n" in text:
                return f"{letter}."
        for question, points in self.points.items():
            if f"Question: {question}\n" in text:
                # which point: decode the last frame's grey level -> frame index -> time
                images = [p for p in content if p["type"] == "image_url"]
                if not images:
                    return "No"
                url = images[-1]["image_url"]["url"]
                img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_GRAYSCALE)
                t = round(float(img.mean()) / 2) / FPS
                p = min(points, key=lambda p: abs(p["t_s"] - t))
                return "Yes" if p["expected"] == "yes" else "No"
        return "?"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    make_video(tmp_path / "v1.mp4")
    make_store(tmp_path / "store.duckdb", tmp_path / "v1.mp4")
    write_qa(tmp_path / "qa")
    return tmp_path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_key_model_scores_one_and_sends_frames_and_prompt(world):
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:test-model", world / "R", base_url=srv.base_url, frames=4, concurrency=4))
    rows = lines(world / "R" / "predictions.jsonl")
    assert len(rows) == N_ITEMS
    assert all(r["outcome"] == "correct" for r in rows), rows
    s = score_run(world / "R")
    assert all(t["accuracy"] == 1.0 for t in s["tasks"].values())
    assert s["overall"] == 1.0 and s["complete"] is False  # only 3 of the 10 tasks in this QA folder
    # the request for psr-1: 4 frames over [0, 8], the last within a frame period of 8.0, the exact prompt text
    body = next(b for b in srv.requests if "Which object did the user see first?" in json.dumps(b))
    content = body["messages"][0]["content"]
    assert sum(p["type"] == "image_url" for p in content) == 4
    assert body["temperature"] == 0 and body["max_tokens"] <= 32
    text = next(p["text"] for p in content if p["type"] == "text")
    assert text == prompts.mcq_prompt(MCQ[0]["question"], MCQ[0]["options"])
    assert text.endswith("Answer the question with only the letter (A, B, C, or D) of the correct option.\n\nThe best option is:")
    row = next(r for r in rows if r["question_id"] == "psr-1")
    assert len(row["frames"]) == 4 and 8.0 - 1 / FPS < row["frames"][-1] <= 8.0 and row["frames"][0] == 0.0
    assert row["point_idx"] == -1 and "t_s" not in row and row["model"] == "openai:test-model"
    pro = [r for r in rows if r["question_id"] == "gta-1"]
    assert sorted(r["point_idx"] for r in pro) == [0, 1, 2] and {r["t_s"] for r in pro} == {2.0, 4.0, 6.0}
    pbody = next(b for b in srv.requests if "Tell me when I look at the mug." in json.dumps(b))
    ptext = next(p["text"] for p in pbody["messages"][0]["content"] if p["type"] == "text")
    assert 'Answer "Yes" if the user gazed at the mug at any time in the last 2 seconds of the video' in ptext
    run = json.loads((world / "R" / "run.json").read_text())
    assert run["endpoint"] == srv.base_url and run["gaze_prompt"] == "none" and len(run["question_files"]) == 3
    assert "unused" not in (world / "R" / "run.json").read_text()


def test_refusing_model_scores_zero(world):
    with Server("refuse") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
    s = score_run(world / "R")
    assert s["overall"] == 0.0
    for t in s["tasks"].values():
        assert t["refused"] == t["n"] and t["correct"] == 0 and t["unparsed"] == 0


def test_429_and_500_are_retried(world):
    with Server("key", fail=[429, 500, 503]) as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, concurrency=1, backoff_s=0.01))
    assert len(srv.requests) == N_ITEMS + 3
    assert all(r["outcome"] == "correct" for r in lines(world / "R" / "predictions.jsonl"))


def test_persistent_failure_is_an_error_outcome_then_rerun_fills_it(world):
    with Server("key", fail=[500] * 3) as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, concurrency=1, backoff_s=0.01, retries=3))
    rows = lines(world / "R" / "predictions.jsonl")
    assert [r["outcome"] for r in rows].count("error") == 1
    assert score_run(world / "R")["tasks"][rows[0]["task"]]["errors"] == 1
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
        assert len(srv.requests) == 1
    s = score_run(world / "R")
    assert s["overall"] == 1.0


def test_killed_run_resumes_to_one_row_per_item(world):
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
    pred = world / "R" / "predictions.jsonl"
    full = pred.read_text().splitlines(keepends=True)
    pred.write_text("".join(full[:2]) + full[2][: len(full[2]) // 2])  # crash mid-line
    with Server("key") as srv:
        msg = run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
        assert len(srv.requests) == N_ITEMS - 2
    rows = lines(pred)
    keys = [(r["question_id"], r["point_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == N_ITEMS
    assert "asked 4" in msg
    # and a third run asks nothing
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
        assert srv.requests == []


def test_overlay_mode_draws_gaze_and_adds_sentence(world):
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=3, gaze_prompt="overlay"))
    body = next(b for b in srv.requests if "Which object did the user see first?" in json.dumps(b))
    content = body["messages"][0]["content"]
    text = next(p["text"] for p in content if p["type"] == "text")
    assert text.startswith(prompts.GAZE_SENTENCE["overlay"] + "\n\nQuestion: ")
    imgs = [cv2.imdecode(np.frombuffer(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
            for p in content if p["type"] == "image_url"]
    first, last = imgs[0], imgs[-1]  # gaze valid before 5 s only
    b, g, r = first[H // 2, W // 2].astype(int)
    assert g > 150 and r < 100  # green dot at the centre
    b, g, r = last[H // 2, W // 2].astype(int)
    assert abs(g - r) < 30  # no dot at 8 s (no valid gaze there)


def test_salience_and_scanpath_modes_run(world):
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R1", base_url=srv.base_url, frames=2, gaze_prompt="salience"))
        run_eval(world / "qa", EvalConfig("text-only:m", world / "R2", base_url=srv.base_url, gaze_prompt="scanpath-text"))
    sal = next(b for b in srv.requests if "Which object did the user see first?" in json.dumps(b) and "heat map" in json.dumps(b))
    assert sum(p["type"] == "image_url" for p in sal["messages"][0]["content"]) == 3
    text_only = [b for b in srv.requests if "Recent gaze" in json.dumps(b)]
    assert text_only and all(all(p["type"] == "text" for p in b["messages"][0]["content"]) for b in text_only)


def test_baselines_need_no_store_and_are_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    write_qa(tmp_path / "qa")
    run_eval(tmp_path / "qa", EvalConfig("random", tmp_path / "r1", seed=3))
    run_eval(tmp_path / "qa", EvalConfig("random", tmp_path / "r2", seed=3))
    run_eval(tmp_path / "qa", EvalConfig("first-option", tmp_path / "f"))
    key = lambda p: sorted((r["question_id"], r["point_idx"], r["response"]) for r in lines(p / "predictions.jsonl"))  # noqa: E731
    assert key(tmp_path / "r1") == key(tmp_path / "r2")
    f = lines(tmp_path / "f" / "predictions.jsonl")
    assert {r["response"] for r in f if r["point_idx"] < 0} == {"A"} and {r["response"] for r in f if r["point_idx"] >= 0} == {"Yes"}
    assert all(r["frames"] == [] for r in f)


def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    with pytest.raises(InputError):
        run_eval(tmp_path / "nope", EvalConfig("random", tmp_path / "R"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no <task_id>.jsonl"):
        run_eval(tmp_path / "empty", EvalConfig("random", tmp_path / "R"))
    write_qa(tmp_path / "qa")
    bad = tmp_path / "qa" / "past_scene_recall.jsonl"
    bad.write_text(bad.read_text() + "{not json\n")
    result = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "random", "--out", str(tmp_path / "R")])
    assert result.exit_code == 2
    assert "past_scene_recall.jsonl: row 3" in result.output and len(result.output.strip().splitlines()) == 1
    bad.write_text(bad.read_text().replace("{not json\n", ""))
    result = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "nope", "--out", str(tmp_path / "R")])
    assert result.exit_code == 2 and "unknown model" in result.output


def test_openai_without_key_or_url_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    write_qa(tmp_path / "qa")
    result = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "openai:gpt-4o", "--out", str(tmp_path / "R")])
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.output
