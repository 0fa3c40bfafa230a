"""More of the eval harness against the loopback server: the streaming alert metric, the reference prompt style,
predictions in the store, the HTML report, released StreamGaze JSON files, and a real SIGKILL of `streamgaze eval`."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from click.testing import CliRunner
from test_eval_runner import FPS, MCQ, N_ITEMS, PRO, Server, lines, world  # noqa: F401  (fixture)

from streamgaze.cli import cli
from streamgaze.eval import prompts
from streamgaze.eval.release import load_release_file, parse_time
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.eval.score import score_run, score_runs


class OnsetServer(Server):
    """Answers a streaming poll "Yes" once the last frame sent is at or after YES_AT[question]."""

    def __init__(self, yes_at: dict[str, float], **kw):
        super().__init__("key", **kw)
        self.yes_at = yes_at

    def answer(self, body: dict) -> str:
        import base64

        import cv2
        import numpy as np

        content = body["messages"][0]["content"]
        text = next(p["text"] for p in content if p["type"] == "text")
        for question, t_yes in self.yes_at.items():
            if f"Question: {question}\n" in text:
                url = [p for p in content if p["type"] == "image_url"][-1]["image_url"]["url"]
                img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_GRAYSCALE)
                t = round(float(img.mean()) / 2) / FPS
                return "Yes" if t >= t_yes - 0.3 else "No"  # grey levels come back ~1.3 frames low
        return super().answer(body)


def _stream_q(qid: str, onset: float) -> dict:
    return {"id": qid, "task": "proactive_gaze_triggered_alert", "family": "proactive", "video_id": "v1",
            "question": f"Alert me about {qid}.", "options": [], "answer": "", "answer_text": "", "time_s": 1.0,
            "clip": [0.0, 1.0], "evidence": {"target": "mug", "onset_s": onset},
            "test_points": [{"t_s": 5.0, "expected": "yes"}]}


def test_streaming_alert_metric_hit_early_late_miss_and_resume(world):
    qs = [_stream_q("s-hit", 4.0), _stream_q("s-early", 6.0), _stream_q("s-late", 2.0), _stream_q("s-miss", 3.0)]
    yes_at = {"Alert me about s-hit.": 5.0, "Alert me about s-early.": 3.0, "Alert me about s-late.": 8.0}
    (world / "qa" / "proactive_gaze_triggered_alert.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    with OnsetServer(yes_at) as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, streaming=True, poll_s=2.0,
                 tolerance_s=3.0, concurrency=4))
        n_requests = len(srv.requests)
    stream = world / "R" / "stream.jsonl"
    rows = lines(stream)
    polls = {q["id"]: sorted(r["point_idx"] for r in rows if r["question_id"] == q["id"]) for q in qs}
    # polls at 3, 5, 7, 9 (k = 1, 2, ...) until the first yes; the miss runs to the video's end (10 s): k = 1..4
    assert polls == {"s-hit": [1, 2], "s-early": [1], "s-late": [1, 2, 3, 4], "s-miss": [1, 2, 3, 4]}
    assert n_requests == len(rows) == 11
    body = next(b for b in srv.requests if "s-hit" in json.dumps(b))
    text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
    assert "at any time in the last 2 seconds of the video" in text  # W = P
    s = score_run(world / "R")["streaming"]
    t = s["tasks"]["proactive_gaze_triggered_alert"]
    assert (t["n"], t["hits"], t["early"], t["late"], t["miss"], t["incomplete"]) == (4, 1, 1, 1, 1, 0)
    assert t["accuracy"] == 0.25 and t["delay_mean_s"] == pytest.approx((1.0 + 7.0) / 2)
    assert s["poll_s"] == 2.0 and s["tolerance_used_s"] == 3.0
    # a killed streaming run (cut mid-line) continues where it stopped, never asking a poll twice
    keep = stream.read_text().splitlines(keepends=True)
    miss_rows = [i for i, ln in enumerate(keep) if "s-miss" in ln]
    cut = miss_rows[1]
    stream.write_text("".join(keep[:cut]) + keep[cut][:10])
    with pytest.raises(Exception, match="P=2.0 s"):  # one P and T per run folder
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url="http://127.0.0.1:9/v1", streaming=True, poll_s=1.0))
    with OnsetServer(yes_at) as srv:
        msg = run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, streaming=True, poll_s=2.0))
        assert len(srv.requests) == len(keep) - cut, msg
    rows = lines(stream)
    keys = [(r["question_id"], r["point_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == 11
    from streamgaze.eval.report import _streaming_md

    md = "\n".join(_streaming_md(score_runs([world / "R"])))
    assert "## Streaming alerts" in md and "| R | proactive_gaze_triggered_alert | 2 | 3 | 4 | 0.250 | 1 | 1 | 1 | 1 | 4.00 / 4.00 |" in md


def test_reference_prompt_style_is_flagged(world):
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, prompt_style="reference"))
    pbody = next(b for b in srv.requests if "Tell me when I look at the mug." in json.dumps(b))
    ptext = next(p["text"] for p in pbody["messages"][0]["content"] if p["type"] == "text")
    assert ptext == prompts.reference_proactive_prompt(PRO[0]["question"])
    assert 'If you have already seen the requested object/event, answer "Yes".' in ptext
    mbody = next(b for b in srv.requests if MCQ[0]["question"] in json.dumps(b))
    mtext = next(p["text"] for p in mbody["messages"][0]["content"] if p["type"] == "text")
    assert mtext.startswith("\nQuestion: ")
    run = json.loads((world / "R" / "run.json").read_text())
    assert run["prompt_style"] == "reference" and "cumulative" in run["flagged"]
    with pytest.raises(Exception, match="prompt_style"):
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2))
    result = CliRunner().invoke(cli, ["score", str(world / "R")])
    assert result.exit_code == 0
    assert "## Flagged runs" in (world / "R" / "report.md").read_text()
    assert "(flagged)" in (world / "R" / "report.html").read_text()


def test_predictions_written_to_store_once_per_item(world):
    store = world / "store.duckdb"
    with Server("key") as srv:
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, store=store))
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, store=store))  # asks nothing
        run_eval(world / "qa", EvalConfig("random", world / "B", store=store))
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("SELECT question_id, point_idx, model, gaze_prompt, prompt_style, outcome, response, latency_s "
                       "FROM predictions WHERE model = 'openai:m'").fetchall()
    assert len(rows) == len({(r[0], r[1]) for r in rows}) == N_ITEMS
    assert all(r[5] == "correct" and r[3] == "none" and r[4] == "windowed" and r[6] for r in rows)
    assert con.execute("SELECT count(*) FROM predictions WHERE model = 'random'").fetchone()[0] == N_ITEMS
    con.close()


def test_html_report_and_runs_side_by_side(world):
    run_eval(world / "qa", EvalConfig("random", world / "r", seed=1))
    run_eval(world / "qa", EvalConfig("first-option", world / "f"))
    result = CliRunner().invoke(cli, ["score", str(world / "r"), str(world / "f"), "--report", str(world / "rep")])
    assert result.exit_code == 0, result.output
    html = (world / "rep" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    assert "data:image/png;base64," in html and "<th>r</th>" in html and "<th>f</th>" in html
    md = (world / "rep" / "report.md").read_text()
    assert "| task | family | n | chance | r | f |" in md
    assert set(score_runs([world / "r", world / "f"])) == {"r", "f"}


def _release_items():
    mcq = [{"response_time": "[00:00 - 00:08]", "video_categories": "TEST", "video_path": "videos/v1.mp4",
            "questions": [{"task_type": "Scene_Reconstruction", "question": q["question"], "time_stamp": f"00:{int(q['time_s']):02d}",
                           "answer": q["answer"], "options": [f"{'ABCD'[i]}. {o}" for i, o in enumerate(q["options"])],
                           "required_ability": "episodic_memory"}]}
           for q in MCQ if q["task"] == "past_scene_recall"]
    pro = [{"response_time": "[00:01 - 00:06]", "video_categories": "TEST", "video_path": "v1.mp4",
            "questions": [{"task_type": "Object_Remind_Easy", "question": PRO[0]["question"], "time_stamp": "00:01",
                           "first_appearance": "00:03", "target_object": "mug",
                           "test_info": [{"realtime": f"00:{int(p['t_s']):02d}", "type": int(p["expected"] == "yes")}
                                         for p in PRO[0]["test_points"]]}]}]
    return mcq, pro


def test_released_json_files_are_read_and_scored(world):
    rel = world / "released"
    rel.mkdir()
    mcq, pro = _release_items()
    (rel / "past_scene_recall.json").write_text(json.dumps(mcq))
    (rel / "proactive_gaze_triggered_alert.json").write_text(json.dumps(pro))
    qs = load_release_file(rel / "past_scene_recall.json")
    assert qs[0]["options"] == MCQ[0]["options"] and qs[0]["answer"] == "C" and qs[0]["clip"] == [0.0, 8.0]
    assert qs[0]["evidence"]["source"] == "streamgaze-release" and qs[0]["video_id"] == "v1"
    (p,) = load_release_file(rel / "proactive_gaze_triggered_alert.json")
    assert p["test_points"] == PRO[0]["test_points"] and p["evidence"]["onset_s"] == 3.0 and p["clip"] == [0.0, 1.0]
    assert parse_time("75:02") == 4502.0 and parse_time("01:00:05") == 3605.0
    with Server("key") as srv:
        result = CliRunner().invoke(cli, ["eval", "--qa", str(rel), "--model", "openai:m", "--base-url", srv.base_url,
                                          "--out", str(world / "R"), "--store", str(world / "store.duckdb"), "--frames", "2"])
    assert result.exit_code == 0, result.output
    s = score_run(world / "R")
    assert s["tasks"]["past_scene_recall"]["accuracy"] == 1.0 and s["tasks"]["past_scene_recall"]["n"] == 2
    assert s["tasks"]["proactive_gaze_triggered_alert"]["accuracy"] == 1.0
    (rel / "past_scene_recall.json").write_text(json.dumps([{"questions": [{"question": "x"}], "video_path": "v1.mp4"}]))
    result = CliRunner().invoke(cli, ["eval", "--qa", str(rel), "--model", "random", "--out", str(world / "R2")])
    assert result.exit_code == 2 and "past_scene_recall.json" in result.output


def test_sigkill_at_a_random_point_then_rerun_gives_one_row_per_item(world):
    """A real `streamgaze eval` process against a slow server, SIGKILLed after a random number of answers."""
    extra = [dict(MCQ[0], id=f"k-{i}", question=f"Killed question {i}?", answer="ABCD"[i % 4]) for i in range(24)]
    qs = MCQ + PRO + extra
    (world / "qa" / "past_scene_recall.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in qs if q["task"] == "past_scene_recall"))
    n_items = N_ITEMS + len(extra)
    seed = int.from_bytes(os.urandom(4), "big")
    kill_after = random.Random(seed).randint(1, n_items - 6)
    pred = world / "R" / "predictions.jsonl"
    with Server("key", delay_s=0.05) as srv:
        srv.key.update({q["question"]: q["answer"] for q in extra})
        env = dict(os.environ, STREAMGAZE_PROGRESS="0")
        env.pop("OPENAI_API_KEY", None)
        cmd = [sys.executable, "-m", "streamgaze.cli", "eval", "--qa", str(world / "qa"), "--model", "openai:m",
               "--base-url", srv.base_url, "--out", str(world / "R"), "--frames", "2", "--concurrency", "4"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if pred.exists() and pred.read_bytes().count(b"\n") >= kill_after:
                    break
                time.sleep(0.005)
            assert proc.poll() is None, f"finished before the kill (seed {seed}): {proc.stderr.read().decode()[-500:]}"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        before = len(lines(pred)) if pred.exists() else 0
        assert before < n_items, f"seed {seed}"
        asked_before = len(srv.requests)
        run_eval(world / "qa", EvalConfig("openai:m", world / "R", base_url=srv.base_url, frames=2, concurrency=4))
        asked_after = len(srv.requests) - asked_before
    rows = lines(pred)
    keys = [(r["question_id"], r["point_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == n_items, f"seed {seed}, killed after {kill_after}"
    assert asked_after == n_items - before, f"seed {seed}"
    assert all(r["outcome"] == "correct" for r in rows), f"seed {seed}"
