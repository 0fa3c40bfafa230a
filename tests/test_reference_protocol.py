"""`streamgaze eval --protocol reference`: the reference harness's frame sampling against hand-computed indices, its
clip bounds per family, and what actually reaches a loopback OpenAI-compatible server (how many images, which
frames, their size, the decoding settings in the body), with the gaze overlay modes; bad options exit 2."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_eval_runner import Server

from streamgaze.cli import cli
from streamgaze.errors import StreamGazeError
from streamgaze.eval import prompts
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.reference_protocol import fit_long_side, reference_clip, reference_indices
from streamgaze.eval.runner import Item, items_of, read_predictions
from streamgaze.store import open_store

# -- the sampling rule, by hand ------------------------------------------------------------------------


def test_more_than_sixteen_frames_are_sampled_by_linspace_truncated():
    # s = 0, e = 80: linspace(0, 79, 16) = 0, 5.27, 10.53, 15.8, 21.07, ... 73.73, 79
    assert reference_indices(0.0, 8.0, 10.0) == [0, 5, 10, 15, 21, 26, 31, 36, 42, 47, 52, 57, 63, 68, 73, 79]
    # s = 20, e = 140 (a present clip [10, 70] at 2 fps): step 119/15 = 7.93
    assert reference_indices(10.0, 70.0, 2.0) == [20, 27, 35, 43, 51, 59, 67, 75, 83, 91, 99, 107, 115, 123, 131, 139]
    # e - s = 17: step 16/15, only the last step skips a frame
    assert reference_indices(0.0, 1.7, 10.0) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16]


def test_sixteen_or_fewer_frames_are_all_sent():
    assert reference_indices(0.9, 2.5, 10.0) == list(range(9, 25))  # e - s == 16: every frame, not linspace
    assert reference_indices(0.0, 1.0, 10.0) == list(range(10))  # e - s < 16
    assert reference_indices(3.05, 3.4, 10.0) == [30, 31, 32, 33]  # s = int(30.5) = 30, e = int(34.0) = 34


def test_a_clip_at_time_zero_holds_no_frame():
    assert reference_indices(0.0, 0.0, 30.0) == []
    assert reference_indices(0.0, 0.03, 30.0) == []  # int(0.9) = 0: no whole frame before the question time
    assert reference_indices(0.0, 0.04, 30.0) == [0]


@settings(max_examples=300, deadline=None)
@given(start=st.floats(0, 3600), length=st.floats(0, 600), fps=st.floats(1, 120), n=st.integers(1, 64))
def test_no_frame_comes_after_the_question_time(start, length, fps, n):
    end = start + length
    idx = reference_indices(start, end, fps, n)
    s, e = int(start * fps), int(end * fps)
    assert len(idx) == (n if e - s > n else max(0, e - s))
    assert idx == sorted(idx)
    for i in idx:
        assert i / fps < end  # strictly before the question time: the frame shown at `end` is never sent
        assert i >= s


# -- clip bounds per family ------------------------------------------------------------------------------


def _q(task: str, family: str | None, time_s: float, clip: list[float], **extra) -> dict:
    q = {"id": "q", "task": task, "video_id": "v", "question": "?", "options": ["a", "b", "c", "d"], "answer": "A",
         "time_s": time_s, "clip": clip, **extra}
    if family is not None:
        q["family"] = family
    return q


def test_clip_bounds_per_family():
    past = items_of(_q("past_scene_recall", "past", 75.0, [30.0, 75.0]))[0]
    assert reference_clip(past) == (0.0, 75.0)  # [0, ts], whatever our own clip says
    present = items_of(_q("present_object_identification_easy", "present", 75.0, [70.0, 75.0]))[0]
    assert reference_clip(present) == (15.0, 75.0)  # [ts - 60, ts]
    early = items_of(_q("present_object_attribute_recognition", "present", 30.0, [25.0, 30.0]))[0]
    assert reference_clip(early) == (0.0, 30.0)  # max(0, ts - 60)
    # no family field: the registered task's spec decides
    fap = items_of(_q("present_future_action_prediction", None, 100.0, [95.0, 100.0]))[0]
    assert reference_clip(fap) == (40.0, 100.0)
    pro = _q("proactive_gaze_triggered_alert", "proactive", 5.0, [0.0, 5.0],
             test_points=[{"t_s": 12.0, "expected": "no"}, {"t_s": 42.0, "expected": "yes"}])
    assert [reference_clip(it) for it in items_of(pro)] == [(0.0, 12.0), (0.0, 42.0)]  # [0, realtime] per point
    # no time_s: the end of the question's clip is its time
    no_time = _q("past_scene_recall", "past", 0.0, [10.0, 50.0])
    del no_time["time_s"]
    assert reference_clip(Item(no_time, -1, None, (10.0, 50.0), "A")) == (0.0, 50.0)


def test_long_side_is_capped_at_2048_with_the_aspect_kept():
    assert fit_long_side(np.zeros((64, 2400, 3), np.uint8)).shape == (54, 2048, 3)  # int(64 * 2048 / 2400) = 54
    assert fit_long_side(np.zeros((3000, 1000, 3), np.uint8)).shape == (2048, 682, 3)
    small = np.zeros((480, 640, 3), np.uint8)
    assert fit_long_side(small) is small  # never enlarged


def test_protocol_defaults_and_overrides_in_the_config(tmp_path):
    ours = EvalConfig("openai:m", tmp_path / "a")
    assert (ours.prompt_style, ours.temperature, ours.top_p, ours.max_tokens) == ("windowed", 0.0, None, 16)
    ref = EvalConfig("openai:m", tmp_path / "b", protocol="reference")
    assert (ref.prompt_style, ref.temperature, ref.top_p, ref.max_tokens) == ("reference", 0.7, 0.8, 1536)
    mixed = EvalConfig("openai:m", tmp_path / "c", protocol="reference", prompt_style="windowed", temperature=0.0,
                       top_p=1.0, max_tokens=8)
    assert (mixed.prompt_style, mixed.temperature, mixed.top_p, mixed.max_tokens) == ("windowed", 0.0, 1.0, 8)
    for bad in ({"protocol": "nonsense"}, {"top_p": 1.5}, {"temperature": -0.1}, {"top_p": float("nan")}):
        with pytest.raises(StreamGazeError):
            EvalConfig("openai:m", tmp_path / "d", **bad)


# -- what reaches the server -----------------------------------------------------------------------------
FPS = 2.0
N_FRAMES = 160  # 80 s
W, H = 2400, 64  # the long side is over 2048: the reference shrinks it, ours to 512
BLOCK = W // 8
NAME = "wide"
MARK = (255, 0, 255)  # BGR magenta corner of the gaze_viz video
MARK_W = 200

PAST_Q = "Which object did the user look at first?"
PRESENT_Q = "What is the user looking at now?"
PRESENT_EARLY_Q = "What did the user just pick up?"
ALERT_Q = "Tell me when I look at the mug."
# question -> the frame index lists the reference sends (one per request), computed by hand above
EXPECTED = {
    PAST_Q: [[0, 9, 18, 27, 37, 46, 55, 64, 74, 83, 92, 101, 111, 120, 129, 139]],  # [0, 70]: linspace(0, 139, 16)
    PRESENT_Q: [[20, 27, 35, 43, 51, 59, 67, 75, 83, 91, 99, 107, 115, 123, 131, 139]],  # [10, 70]
    PRESENT_EARLY_Q: [list(range(10))],  # [0, 5]: 10 frames, all sent
    ALERT_Q: [[], list(range(16)), [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 17]],  # [0, 0], [0, 8], [0, 9]
}
QUESTION_TIME = {PAST_Q: 70.0, PRESENT_Q: 70.0, PRESENT_EARLY_Q: 5.0}


def _frame(i: int) -> np.ndarray:
    """Frame i shows its index in binary: block b (of 8 across the width) white when bit b is set."""
    f = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if i >> b & 1:
            f[:, b * BLOCK:(b + 1) * BLOCK] = 255
    return f


def _write_video(path: Path, mark: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(N_FRAMES):
        f = _frame(i)
        if mark:
            f[:, :MARK_W] = MARK
        out.write(f)
    out.release()


def _mcq(question: str, stamp: str, answer: str = "A") -> dict:
    return {"task_type": "x", "question": question, "time_stamp": stamp, "answer": answer,
            "options": ["A. cup", "B. bowl", "C. pan", "D. lid"]}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A released-layout folder with one 80 s, 2400 px wide video: a past question at 70 s, a present item with two
    questions (70 s and 5 s), and a gaze-triggered alert with test points at 0, 8 and 9 s; its gaze_viz video has
    a magenta left edge; a store holds the same video with gaze at the centre."""
    root = tmp_path_factory.mktemp("refproto")
    qa, videos = root / "qa", root / "videos"
    qa.mkdir()
    _write_video(videos / "original_video" / f"{NAME}.mp4")
    _write_video(videos / "gaze_viz_video" / f"{NAME}.mp4", mark=True)
    item = {"video_categories": "TEST", "video_path": f"/nonexistent/{NAME}.mp4"}
    files = {
        "past_scene_recall": [{**item, "response_time": "[00:00 - 01:10]", "questions": [_mcq(PAST_Q, "01:10")]}],
        "present_object_identification_easy": [{**item, "response_time": "[00:10 - 01:10]",
                                                "questions": [_mcq(PRESENT_Q, "01:10", "B"), _mcq(PRESENT_EARLY_Q, "00:05", "C")]}],
        "proactive_gaze_triggered_alert": [{**item, "response_time": "[00:00 - 00:09]", "questions": [{
            "task_type": "Object_Remind_Easy", "question": ALERT_Q, "time_stamp": "00:00", "first_appearance": "00:06",
            "target_object": "mug", "test_info": [{"realtime": "00:00", "type": 0}, {"realtime": "00:08", "type": 1},
                                                  {"realtime": "00:09", "type": 1}]}]}],
    }
    for task, items in files.items():
        (qa / f"{task}.json").write_text(json.dumps(items, indent=1))
    store = root / "store.duckdb"
    with open_store(store) as s, s.transaction():
        s.insert("videos", pa.table({"video_id": [NAME], "dataset": ["test"], "path": [str(videos / "original_video" / f"{NAME}.mp4")],
                                     "fps": [FPS], "width": [W], "height": [H], "duration_s": [N_FRAMES / FPS]}))
        t = np.arange(0, N_FRAMES / FPS, 0.05)
        s.insert("gaze", pa.table({"video_id": [NAME] * len(t), "t_s": t, "x": np.full(len(t), 0.5),
                                   "y": np.full(len(t), 0.5), "valid": np.ones(len(t), bool)}))
    return {"qa": qa, "videos": videos, "store": store, "n_requests": sum(len(v) for v in EXPECTED.values())}


class Recorder(Server):
    def answer(self, body: dict) -> str:
        text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
        return "A" if "Options:" in text else "Yes"


def _images(body: dict) -> list[np.ndarray]:
    return [cv2.imdecode(np.frombuffer(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
            for p in body["messages"][0]["content"] if p["type"] == "image_url"]


def _index(img: np.ndarray) -> int:
    """The frame index written by `_frame`, read at each block's centre (scaled to the image's width)."""
    w = img.shape[1]
    bits = [img[img.shape[0] // 4, int((b + 0.5) * w / 8)].mean() > 128 for b in range(8)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def _text(body: dict) -> str:
    return next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")


def _question_of(text: str) -> str:
    return next(q for q in EXPECTED if f"Question: {q}\n" in text)


def _eval(release, out: Path, monkeypatch, *extra) -> tuple:
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with Recorder() as srv:
        result = CliRunner().invoke(cli, ["eval", "--qa", str(release["qa"]), "--videos", str(release["videos"]),
                                          "--model", "openai:m", "--base-url", srv.base_url, "--out", str(out),
                                          *map(str, extra)])
    assert result.exit_code == 0, result.output
    return srv.requests, json.loads((out / "run.json").read_text())


def test_reference_frames_size_prompts_and_decoding_reach_the_server(release, tmp_path, monkeypatch):
    bodies, info = _eval(release, tmp_path / "R", monkeypatch, "--protocol", "reference")
    assert len(bodies) == release["n_requests"]
    sent: dict[str, list[list[int]]] = {q: [] for q in EXPECTED}
    for body in bodies:
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.8, 1536)
        images = _images(body)
        for img in images:
            assert img.shape[:2] == (54, 2048)  # long side 2048, aspect kept (int(64 * 2048 / 2400))
        text = _text(body)
        q = _question_of(text)
        sent[q].append([_index(img) for img in images])
        if q == ALERT_Q:
            assert text == prompts.reference_proactive_prompt(ALERT_Q)
        else:
            assert text.startswith(f"\nQuestion: {q}\nOptions:\nA. cup\n") and text.endswith("\n\nThe best option is:")
    assert {q: sorted(v) for q, v in sent.items()} == {q: sorted(v) for q, v in EXPECTED.items()}

    # run.json: the protocol and the effective settings; the predictions: frame times before the question time
    assert info["protocol"] == "reference" and info["prompt_style"] == "reference" and info["flagged"]
    assert info["decoding"] == {"temperature": 0.7, "top_p": 0.8, "max_tokens": 1536}
    assert info["frames"]["n"] == 16 and info["frames"]["max_side_px"] == 2048 and info["frames"]["jpeg_quality"] == 85
    rows = read_predictions(tmp_path / "R" / "predictions.jsonl")
    assert len(rows) == release["n_requests"]
    by_id = {"past_scene_recall-0-0": PAST_Q, "present_object_identification_easy-0-0": PRESENT_Q,
             "present_object_identification_easy-0-1": PRESENT_EARLY_Q}
    for r in rows:
        t_q = r["t_s"] if r["point_idx"] >= 0 else QUESTION_TIME[by_id[r["question_id"]]]
        assert all(t < t_q for t in r["frames"]), (r["question_id"], r["frames"], t_q)
        assert r["outcome"] != "error"
    assert sorted(len(r["frames"]) for r in rows) == sorted(len(x) for v in EXPECTED.values() for x in v)


def test_decoding_settings_given_win_and_ours_sends_no_top_p(release, tmp_path, monkeypatch):
    bodies, info = _eval(release, tmp_path / "R", monkeypatch, "--protocol", "reference", "--temperature", "0.2",
                         "--top-p", "0.5", "--max-tokens", "24", "--prompt-style", "windowed")
    assert {(b["temperature"], b["top_p"], b["max_tokens"]) for b in bodies} == {(0.2, 0.5, 24)}
    assert info["decoding"] == {"temperature": 0.2, "top_p": 0.5, "max_tokens": 24} and info["prompt_style"] == "windowed"
    assert not info["flagged"]
    assert any(_text(b).startswith(f"Question: {PAST_Q}\n") for b in bodies)  # the windowed texts, as asked

    bodies, info = _eval(release, tmp_path / "O", monkeypatch)
    assert info["protocol"] == "ours" and info["decoding"] == {"temperature": 0.0, "top_p": None, "max_tokens": 16}
    assert all("top_p" not in b and b["temperature"] == 0 and b["max_tokens"] == 16 for b in bodies)
    # ours: 16 frames at most 512 px wide, the last within a frame period of the question time
    assert {img.shape[1] for b in bodies for img in _images(b)} == {512}
    past = next(b for b in bodies if PAST_Q in _text(b))
    assert len(_images(past)) == 16 and _index(_images(past)[-1]) == 140


def test_overlay_from_the_gaze_viz_video_and_drawn_from_a_store(release, tmp_path, monkeypatch):
    bodies, _ = _eval(release, tmp_path / "V", monkeypatch, "--protocol", "reference", "--gaze-prompt", "overlay")
    images = [img for b in bodies for img in _images(b)]
    assert images and all(img.shape[:2] == (54, 2048) for img in images)
    for img in images:  # the released gaze_viz frames: magenta left edge
        assert np.abs(img[10:44, 10:150].reshape(-1, 3).mean(axis=0) - np.array(MARK)).max() < 40
    assert all(_text(b).startswith(prompts.GAZE_SENTENCE["overlay"] + "\n\n\nQuestion: ") for b in bodies
               if "Options:" in _text(b))

    bodies, _ = _eval(release, tmp_path / "S", monkeypatch, "--protocol", "reference", "--gaze-prompt", "overlay",
                      "--store", release["store"])
    images = [img for b in bodies for img in _images(b)]
    assert images
    for img in images:  # drawn by us at the video's size, then shrunk: a green dot at the centre, no magenta
        b_, g, r = img[27, 1024].astype(int)
        assert g > 150 and r < 100 and b_ < 100
        assert np.abs(img[10:44, 10:150].reshape(-1, 3).mean(axis=0) - np.array(MARK)).max() > 100


def test_question_files_get_the_reference_clip_and_the_audit_checks_that_clip(release, tmp_path, monkeypatch):
    """Our own question lines carry a clip of their own; the reference protocol recomputes it from time_s, records
    it, samples inside it, and the audit after the run holds the request to that clip."""
    qa = tmp_path / "qa"
    qa.mkdir()
    base = {"video_id": NAME, "options": ["cup", "bowl", "pan", "lid"], "answer": "A", "answer_text": "cup", "evidence": {}}
    lines = {"present_object_identification_easy": {**base, "id": "p1", "task": "present_object_identification_easy",
                                                    "family": "present", "question": PRESENT_Q, "time_s": 75.0, "clip": [70.0, 75.0]},
             "past_scene_recall": {**base, "id": "s1", "task": "past_scene_recall", "family": "past", "question": PAST_Q,
                                   "time_s": 75.0, "clip": [30.0, 75.0]}}
    for task, q in lines.items():
        (qa / f"{task}.jsonl").write_text(json.dumps(q) + "\n")
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with Recorder() as srv:
        result = CliRunner().invoke(cli, ["eval", "--qa", str(qa), "--store", str(release["store"]), "--model", "openai:m",
                                          "--base-url", srv.base_url, "--protocol", "reference", "--out", str(tmp_path / "R")])
    assert result.exit_code == 0, result.output
    assert "none showed a frame or gaze after its question time" in result.output
    rows = {r["question_id"]: r for r in read_predictions(tmp_path / "R" / "predictions.jsonl")}
    assert rows["p1"]["clip"] == [15.0, 75.0] and rows["s1"]["clip"] == [0.0, 75.0]
    present = next(b for b in srv.requests if PRESENT_Q in _text(b))
    assert [_index(img) for img in _images(present)] == [30, 37, 45, 53, 61, 69, 77, 85, 93, 101, 109, 117, 125, 133, 141, 149]
    assert [round(t * FPS) for t in rows["p1"]["frames"]] == [30, 37, 45, 53, 61, 69, 77, 85, 93, 101, 109, 117, 125, 133, 141, 149]


# -- bad options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [(["--protocol", "nonsense"], "--protocol"), (["--top-p", "1.5"], "--top-p"),
                                          (["--temperature", "nan"], "--temperature"), (["--max-tokens", "0"], "--max-tokens")])
def test_bad_options_are_usage_errors(release, tmp_path, args, needle):
    out = tmp_path / "R"
    result = CliRunner().invoke(cli, ["eval", "--qa", str(release["qa"]), "--videos", str(release["videos"]),
                                      "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not out.exists()


def test_a_run_folder_keeps_its_protocol(release, tmp_path, monkeypatch):
    _eval(release, tmp_path / "R", monkeypatch, "--protocol", "reference", "--prompt-style", "windowed")
    result = CliRunner().invoke(cli, ["eval", "--qa", str(release["qa"]), "--videos", str(release["videos"]),
                                      "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                                      "--out", str(tmp_path / "R")])
    assert result.exit_code == 2 and "protocol 'reference'" in result.output, result.output
