"""Batch inference files (OpenAI Batch format) for ``eval`` and the ``openai`` object labeller: written files have
the documented shape and limits, written -> answered -> read equals the online run, ``--batch`` submits once and
resumes after a kill, and bad result files or failed batches are one line, exit 2, nothing changed."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_server import BatchServer, completion
from click.testing import CliRunner
from test_eval_runner import MCQ, N_ITEMS, Server, lines, world  # noqa: F401  (fixture)

from streamgaze.cli import cli
from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.llm.batch import CHAT_URL, RequestWriter, read_results

MODEL = "openai:vlm"
ANSWER = Server("key").answer  # the deterministic answers of the eval tests' server (hidden key, frame levels)


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def eval_args(world: Path, out: str = "R", *extra: str, model: str = MODEL) -> list[str]:
    return ["eval", "--qa", str(world / "qa"), "--model", model, "--out", str(world / out),
            "--store", str(world / "store.duckdb"), *extra]


def answer_files(requests: list[Path], out: Path, answer=ANSWER, skip: set[str] = frozenset()) -> Path:
    """What ``vllm run_batch`` does with request files: one result line per request."""
    rows = []
    for f in requests:
        for line in f.read_text().splitlines():
            req = json.loads(line)
            if req["custom_id"] in skip:
                continue
            rows.append({"id": "r", "custom_id": req["custom_id"],
                         "response": {"status_code": 200, "body": completion(req["body"]["model"], answer(req["body"]))},
                         "error": None})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def comparable(path: Path) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "latency_s"} for r in lines(path)]
    return sorted(rows, key=lambda r: (r["question_id"], r["point_idx"]))


def snapshot(*paths: Path) -> dict:
    out = {}
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file() and f.suffix != ".wal":
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def stored_predictions(store: Path) -> list[tuple]:
    from streamgaze.store import open_store

    with open_store(store, read_only=True) as st:
        return [tuple(r.values()) for r in st.rows(
            "SELECT question_id, point_idx, response, parsed, outcome FROM predictions ORDER BY ALL")]


@pytest.fixture()
def online(world):
    """The online run's predictions against a deterministic server (the reference for every batch path)."""
    srv = BatchServer(ANSWER)
    try:
        run_eval(world / "qa", EvalConfig(MODEL, world / "online", base_url=srv.url, store=world / "store.duckdb"))
    finally:
        srv.close()
    return comparable(world / "online" / "predictions.jsonl")


def test_write_files_have_the_batch_shape_and_read_equals_online(world, online):
    res = run_cli(*eval_args(world, "R", "--batch-write", str(world / "B")))
    assert res.exit_code == 0, res.output
    assert "wrote 6 requests" in res.output and "nothing sent" in res.output
    files = sorted((world / "B").glob("requests-*.jsonl"))
    assert [f.name for f in files] == ["requests-0001.jsonl"]
    reqs = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert len(reqs) == N_ITEMS
    for r in reqs:
        assert set(r) == {"custom_id", "method", "url", "body"}
        assert r["method"] == "POST" and r["url"] == CHAT_URL and r["body"]["model"] == "vlm"
        images = [p for p in r["body"]["messages"][0]["content"] if p["type"] == "image_url"]
        assert len(images) == 16 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert len({r["custom_id"] for r in reqs}) == N_ITEMS
    manifest = json.loads((world / "B" / "manifest.json").read_text())
    assert manifest["requests"] == N_ITEMS and manifest["settings"]["model"] == MODEL
    by_id = {e["custom_id"]: e for e in manifest["custom_ids"]}
    assert {(e["question_id"], e["point_idx"]) for e in by_id.values()} == \
        {(q["id"], -1) for q in MCQ} | {("gta-1", i) for i in range(3)}

    results = answer_files(files, world / "B" / "results-0001.jsonl")
    res = run_cli(*eval_args(world, "R", "--batch-read", str(results)))
    assert res.exit_code == 0, res.output
    assert f"read {N_ITEMS} answers" in res.output and "unanswered" not in res.output
    assert comparable(world / "R" / "predictions.jsonl") == online
    # reading the same file again changes nothing
    before = snapshot(world / "R" / "predictions.jsonl"), stored_predictions(world / "store.duckdb")
    res = run_cli(*eval_args(world, "R", "--batch-read", str(world / "B")))  # a folder: its result files
    assert res.exit_code == 0, res.output
    assert "read 0 answers" in res.output and f"{N_ITEMS} already answered" in res.output
    assert (snapshot(world / "R" / "predictions.jsonl"), stored_predictions(world / "store.duckdb")) == before
    assert len(lines(world / "R" / "predictions.jsonl")) == N_ITEMS


def test_partial_results_list_the_unanswered_and_the_next_write_asks_only_those(world):
    assert run_cli(*eval_args(world, "R", "--batch-write", str(world / "B"))).exit_code == 0
    files = sorted((world / "B").glob("requests-*.jsonl"))
    ids = [json.loads(x)["custom_id"] for x in files[0].read_text().splitlines()]
    results = answer_files(files, world / "part.jsonl", skip={ids[0], ids[4]})
    res = run_cli(*eval_args(world, "R", "--batch-read", str(results)))
    assert res.exit_code == 0, res.output
    assert "2 requests still unanswered" in res.output and ids[0] in res.output
    res = run_cli(*eval_args(world, "R", "--batch-write", str(world / "B2")))
    again = [json.loads(x)["custom_id"] for x in (world / "B2" / "requests-0001.jsonl").read_text().splitlines()]
    assert sorted(again) == sorted([ids[0], ids[4]])


def test_file_images_are_written_once_and_referred_by_url(world):
    assert run_cli(*eval_args(world, "R", "--batch-write", str(world / "inline"))).exit_code == 0
    res = run_cli(*eval_args(world, "R", "--batch-write", str(world / "files"), "--batch-images", "file"))
    assert res.exit_code == 0, res.output
    reqs = [json.loads(x) for x in (world / "files" / "requests-0001.jsonl").read_text().splitlines()]
    urls = [p["image_url"]["url"] for r in reqs for p in r["body"]["messages"][0]["content"] if p["type"] == "image_url"]
    assert all(u.startswith("file://") for u in urls)
    jpegs = sorted((world / "files" / "images").rglob("*.jpg"))
    assert len(jpegs) == len(set(urls)) < len(urls)  # each distinct frame once, shared between requests
    assert {Path(u[len("file://"):]) for u in urls} == set(jpegs)
    inline = (world / "inline" / "requests-0001.jsonl").stat().st_size
    # tiny flat test frames: the 5x of real frames is measured by bench/bench_batch.py
    assert (world / "files" / "requests-0001.jsonl").stat().st_size * 3 < inline
    # the same frames: a file URL's bytes are the inline data URL's bytes
    inline_reqs = [json.loads(x) for x in (world / "inline" / "requests-0001.jsonl").read_text().splitlines()]
    a = inline_reqs[0]["body"]["messages"][0]["content"][0]["image_url"]["url"]
    b = reqs[0]["body"]["messages"][0]["content"][0]["image_url"]["url"]
    import base64

    assert base64.b64decode(a.split(",", 1)[1]) == Path(b[len("file://"):]).read_bytes()


def test_request_files_split_at_the_request_and_byte_limits(tmp_path):
    w = RequestWriter(tmp_path / "n", max_requests=3)
    for i in range(7):
        w.add(f"k:d:{i}", {"model": "m", "messages": []})
    files = w.close()
    assert [len(f.read_text().splitlines()) for f in files] == [3, 3, 1]
    w = RequestWriter(tmp_path / "b", max_bytes=300)
    for i in range(5):
        w.add(f"k:d:{i}", {"model": "m", "messages": [{"role": "user", "content": "x" * 100}]})
    files = w.close()
    assert all(f.stat().st_size <= 300 for f in files) and len(files) > 1
    assert sum(len(f.read_text().splitlines()) for f in files) == 5
    assert not list((tmp_path / "b").glob("*.part"))


def test_batch_submits_once_polls_and_reads(world, online, monkeypatch):
    monkeypatch.setenv("STREAMGAZE_BATCH_POLL_S", "0.05")
    srv = BatchServer(ANSWER, delay_s=0.01)
    try:
        res = run_cli(*eval_args(world, "R", "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert srv.uploads == ["file-1"] and srv.created == ["batch_1"] and srv.online == 0
        assert comparable(world / "R" / "predictions.jsonl") == online
        state = json.loads((world / "R" / "batch" / "batches.json").read_text())
        assert [j["batch_id"] for j in state["jobs"]] == ["batch_1"] and state["jobs"][0]["status"] == "read"
        # everything answered: a rerun submits nothing
        res = run_cli(*eval_args(world, "R", "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert srv.created == ["batch_1"] and len(srv.uploads) == 1
    finally:
        srv.close()


def test_killed_after_submit_the_rerun_polls_the_same_batch(world, online, monkeypatch):
    srv = BatchServer(ANSWER)
    srv.hold.clear()  # the batch stays in progress until released
    env = {**os.environ, "STREAMGAZE_BATCH_POLL_S": "0.05", "STREAMGAZE_PROGRESS": "0"}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamgaze.cli", *eval_args(world, "R", "--batch", "--base-url", srv.url)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while len(srv.retrieved) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert srv.created == ["batch_1"], proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert not (world / "R" / "predictions.jsonl").exists() or not lines(world / "R" / "predictions.jsonl")
        srv.hold.set()
        monkeypatch.setenv("STREAMGAZE_BATCH_POLL_S", "0.05")
        polled = len(srv.retrieved)
        res = run_cli(*eval_args(world, "R", "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert srv.uploads == ["file-1"] and srv.created == ["batch_1"]  # no second upload, no second batch
        assert srv.retrieved[polled:] and set(srv.retrieved[polled:]) == {"batch_1"}
        assert comparable(world / "R" / "predictions.jsonl") == online
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.close()


# -- bad input: one line, exit 2, run folder and store unchanged -----------------------------------------------

@pytest.fixture()
def half_run(world):
    """A run folder with half its answers read from a batch, and the request files of the run."""
    assert run_cli(*eval_args(world, "R", "--batch-write", str(world / "B"))).exit_code == 0
    files = sorted((world / "B").glob("requests-*.jsonl"))
    ids = [json.loads(x)["custom_id"] for x in files[0].read_text().splitlines()]
    answer_files(files, world / "first.jsonl", skip=set(ids[3:]))
    assert run_cli(*eval_args(world, "R", "--batch-read", str(world / "first.jsonl"))).exit_code == 0
    return files


def _refused(world, *args, expect: str) -> None:
    before = snapshot(world / "R", world / "store.duckdb")
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 2, res.output
    err = res.output.strip().splitlines()
    assert len(err) == 1 and expect in err[0], res.output
    assert snapshot(world / "R", world / "store.duckdb") == before


def test_result_file_that_is_not_json_lines(world, half_run):
    bad = world / "bad.jsonl"
    bad.write_text('{"custom_id": "x", "response": {"status_code": 200, "body": {}}}\nnot json at all\n')
    _refused(world, *eval_args(world, "R", "--batch-read", str(bad)), expect="bad.jsonl")
    (world / "shape.jsonl").write_text('{"custom_id": "eval:x:y:-1", "response": "yes"}\n')
    _refused(world, *eval_args(world, "R", "--batch-read", str(world / "shape.jsonl")), expect="status_code")


def test_custom_id_matching_no_request(world, half_run):
    good = answer_files(half_run, world / "all.jsonl")
    rows = good.read_text().splitlines()
    row = json.loads(rows[-1])
    digest = row["custom_id"].split(":")[1]
    row["custom_id"] = f"eval:{digest}:no-such-question:-1"
    (world / "odd.jsonl").write_text("\n".join(rows[:-1] + [json.dumps(row)]) + "\n")
    _refused(world, *eval_args(world, "R", "--batch-read", str(world / "odd.jsonl")), expect="matches no request")


def test_result_for_another_model_or_settings(world, half_run):
    # the requests of another gaze mode, answered: refused against this run
    assert run_cli(*eval_args(world, "O", "--batch-write", str(world / "other"), "--gaze-prompt", "overlay")).exit_code == 0
    other = answer_files(sorted((world / "other").glob("requests-*.jsonl")), world / "other.jsonl")
    _refused(world, *eval_args(world, "R", "--batch-read", str(other)), expect="another model or settings")
    assert run_cli(*eval_args(world, "M", "--batch-write", str(world / "m2"), model="openai:other")).exit_code == 0
    other = answer_files(sorted((world / "m2").glob("requests-*.jsonl")), world / "m2.jsonl")
    _refused(world, *eval_args(world, "R", "--batch-read", str(other)), expect="another model or settings")


@pytest.mark.parametrize("end", ["failed", "expired"])
def test_batch_failed_or_expired_on_the_provider_side(world, half_run, monkeypatch, end):
    monkeypatch.setenv("STREAMGAZE_BATCH_POLL_S", "0.02")
    srv = BatchServer(ANSWER)
    srv.end_as = end
    try:
        preds = snapshot(world / "R" / "predictions.jsonl", world / "R" / "run.json", world / "store.duckdb")
        res = CliRunner().invoke(cli, eval_args(world, "R", "--batch", "--base-url", srv.url))
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and f"{end} on the provider side" in res.output
        assert "batch_1" in res.output
        assert snapshot(world / "R" / "predictions.jsonl", world / "R" / "run.json", world / "store.duckdb") == preds
        # the failed batch is closed: the next run submits the unanswered requests again and completes
        srv.end_as = None
        res = run_cli(*eval_args(world, "R", "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert srv.created == ["batch_1", "batch_2"]
        assert len({(r["question_id"], r["point_idx"]) for r in lines(world / "R" / "predictions.jsonl")}) == N_ITEMS
    finally:
        srv.close()


def test_read_results_prefers_an_answer_over_an_error(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"custom_id": "a", "response": None, "error": {"code": "x", "message": "boom"}}) + "\n"
                 + json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": completion("m", "B")}}) + "\n"
                 + json.dumps({"custom_id": "b", "response": {"status_code": 500, "body": {"error": {"message": "down"}}}}) + "\n")
    res = read_results([f])
    assert res["a"].text == "B" and res["a"].error is None
    assert res["b"].text is None and "HTTP 500" in res["b"].error


# -- objects (the openai labeller) ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def labeller_answers():
    """The openai labeller tests' deterministic answers (the episode found from the drawn gaze dot)."""
    from test_openai_labeller import FakeOpenAI

    fake = FakeOpenAI()
    yield lambda body: fake.handle(body, None)[1]
    fake.close()


def labeller_video(path: Path) -> Path:
    """The openai labeller tests' video: numbered grey frames, 24 fps, 10 s."""
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (320, 240))
    for i in range(240):
        img = np.full((240, 320, 3), 128, np.uint8)
        cv2.putText(img, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        out.write(img)
    out.release()
    return path


def objects_rows(store: Path) -> list[tuple]:
    from streamgaze.store import open_store

    with open_store(store, read_only=True) as st:
        return [tuple(r.values()) for r in st.rows(
            "SELECT episode_id, name, role, attributes, labeller FROM objects ORDER BY ALL")]


def objects_args(store: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["objects", "--store", str(store), "--labeller", "openai", "--model", "test-vlm",
            "--param", f"cache_dir={tmp_path / ('cache-' + store.stem)}", "--param", "backoff_s=0.01", *extra]


def test_objects_write_read_and_submit_equal_the_online_labels(tmp_path, labeller_answers, monkeypatch):
    from test_openai_labeller import make_store

    from streamgaze.objects.stage import run_objects

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("STREAMGAZE_BATCH_POLL_S", "0.02")
    vid = labeller_video(tmp_path / "video.mp4")
    srv = BatchServer(labeller_answers)
    try:
        online = make_store(tmp_path / "online.duckdb", vid)
        run_objects(online, "openai", {"base_url": srv.url, "model": "test-vlm", "backoff_s": 0.01,
                                       "cache_dir": str(tmp_path / "cache-online")})
        expected = objects_rows(online)
        assert len({r[0] for r in expected if r[2] == "gazed"}) == 7

        # write (no key, no endpoint, the store untouched) -> answer like run_batch -> read
        store = make_store(tmp_path / "batch.duckdb", vid)
        before = snapshot(store)
        res = run_cli(*objects_args(store, tmp_path, "--batch-write", str(tmp_path / "OB")))
        assert res.exit_code == 0, res.output
        assert "wrote 21 requests" in res.output and snapshot(store) == before
        reqs = [json.loads(x) for x in (tmp_path / "OB" / "requests-0001.jsonl").read_text().splitlines()]
        assert all(r["custom_id"].startswith("objects:") and r["body"]["model"] == "test-vlm" for r in reqs)
        manifest = json.loads((tmp_path / "OB" / "manifest.json").read_text())
        assert sorted({e["episode_id"] for e in manifest["custom_ids"]}) == [f"e{i}" for i in range(1, 8)]
        assert {e["video_id"] for e in manifest["custom_ids"]} == {"v1"}
        results = answer_files([tmp_path / "OB" / "requests-0001.jsonl"], tmp_path / "OB" / "results.jsonl",
                               answer=labeller_answers)
        # bad input first: a custom_id of no request -> exit 2, the store as it was
        rows = results.read_text().splitlines()
        odd = json.loads(rows[0])
        odd["custom_id"] = odd["custom_id"][:-8] + "00000000"
        (tmp_path / "odd.jsonl").write_text("\n".join(rows + [json.dumps(odd)]) + "\n")
        bad = CliRunner().invoke(cli, objects_args(store, tmp_path, "--batch-read", str(tmp_path / "odd.jsonl")))
        assert bad.exit_code == 2 and "matches no request" in bad.output and snapshot(store) == before

        # the answers of another model: refused, the store as it was
        res = run_cli(*objects_args(store, tmp_path, "--batch-write", str(tmp_path / "OM"), "--param", "max_tokens=77"))
        other = answer_files([tmp_path / "OM" / "requests-0001.jsonl"], tmp_path / "om.jsonl", answer=labeller_answers)
        bad = CliRunner().invoke(cli, objects_args(store, tmp_path, "--batch-read", str(other)))
        assert bad.exit_code == 2 and "another model or settings" in bad.output and snapshot(store) == before

        res = run_cli(*objects_args(store, tmp_path, "--batch-read", str(results)))
        assert res.exit_code == 0, res.output
        assert objects_rows(store) == expected
        res = run_cli(*objects_args(store, tmp_path, "--batch-read", str(results)))  # again: nothing changes
        assert res.exit_code == 0, res.output
        assert objects_rows(store) == expected

        # submit through the Files and Batches API
        sub = make_store(tmp_path / "sub.duckdb", vid)
        res = run_cli(*objects_args(sub, tmp_path, "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert objects_rows(sub) == expected and srv.created == ["batch_1"] and srv.online == 21
        assert json.loads((tmp_path / "sub.duckdb.batch" / "batches.json").read_text())["jobs"][0]["status"] == "read"
    finally:
        srv.close()


def test_objects_partial_results_keep_the_unanswered_episodes(tmp_path, labeller_answers, monkeypatch):
    from test_openai_labeller import make_store

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    vid = labeller_video(tmp_path / "video.mp4")
    store = make_store(tmp_path / "s.duckdb", vid)
    res = run_cli(*objects_args(store, tmp_path, "--batch-write", str(tmp_path / "W"), "--batch-images", "file"))
    assert res.exit_code == 0, res.output
    reqs = (tmp_path / "W" / "requests-0001.jsonl").read_text().splitlines()
    assert all('"file://' in r and "base64" not in r for r in reqs)
    ids = [json.loads(r)["custom_id"] for r in reqs]

    def from_files(body):  # what vLLM does with file:// URLs: read the JPEG, answer as for inline
        import base64

        for m in body["messages"]:
            if isinstance(m["content"], list):
                for p in m["content"]:
                    if p["type"] == "image_url":
                        data = Path(p["image_url"]["url"][len("file://"):]).read_bytes()
                        p["image_url"]["url"] = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        return labeller_answers(body)

    results = answer_files([tmp_path / "W" / "requests-0001.jsonl"], tmp_path / "r.jsonl", answer=from_files,
                           skip=set(ids[:3]))
    res = run_cli(*objects_args(store, tmp_path, "--batch-read", str(results)))
    assert res.exit_code == 0, res.output
    assert "3 requests still unanswered" in res.output
    import re

    kept = int(re.search(r"(\d) episodes kept their rows", res.output).group(1))
    assert 1 <= kept <= 3 and len({r[0] for r in objects_rows(store) if r[2] == "gazed"}) == 7 - kept


def test_batch_flags_that_do_not_go_together(world):
    for args, expect in (
        (eval_args(world, "R", "--batch-write", str(world / "B"), model="random"), "sends no chat requests"),
        (eval_args(world, "R", "--batch-write", str(world / "B"), "--streaming"), "streaming"),
        (eval_args(world, "R", "--batch", "--batch-images", "file"), "--batch-images file goes with --batch-write"),
        (eval_args(world, "R", "--batch", "--batch-read", str(world)), "go one at a time"),
        (eval_args(world, "R", "--batch-read", str(world / "none.jsonl")), "no such batch result file"),
    ):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2 and expect in res.output, (args, res.output)
        assert not (world / "R").exists() and not (world / "B").exists()


def test_results_that_failed_at_the_provider_exit_1_and_are_asked_again(world):
    assert run_cli(*eval_args(world, "R", "--batch-write", str(world / "B"))).exit_code == 0
    f = world / "B" / "requests-0001.jsonl"
    results = answer_files([f], world / "r.jsonl")
    rows = results.read_text().splitlines()
    first = json.loads(rows[0])
    first["response"] = {"status_code": 500, "body": {"error": {"message": "overloaded"}}}
    results.write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n")
    res = CliRunner().invoke(cli, eval_args(world, "R", "--batch-read", str(results)))
    assert res.exit_code == 1 and "1 of 6 batch results are errors" in res.output and "overloaded" in res.output
    assert len(lines(world / "R" / "predictions.jsonl")) == N_ITEMS - 1  # no row for the failed one
    assert run_cli(*eval_args(world, "R", "--batch-write", str(world / "B2"))).exit_code == 0
    again = [json.loads(x)["custom_id"] for x in (world / "B2" / "requests-0001.jsonl").read_text().splitlines()]
    assert again == [first["custom_id"]]


def test_objects_batch_with_failed_requests_exits_1_and_the_next_batch_asks_them(tmp_path, monkeypatch):
    from test_openai_labeller import FakeOpenAI, make_store

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("STREAMGAZE_BATCH_POLL_S", "0.02")
    fake = FakeOpenAI({"e2": "500_once"})  # e2's frames fail the first time they are asked

    def answer(body):
        status, content, _ = fake.handle(body, None)
        return content if status == 200 else None

    srv = BatchServer(answer)
    try:
        store = make_store(tmp_path / "s.duckdb", labeller_video(tmp_path / "video.mp4"))
        res = CliRunner().invoke(cli, objects_args(store, tmp_path, "--batch", "--base-url", srv.url))
        assert res.exit_code == 1 and "failed in the batch" in res.output, res.output
        assert "e2" not in {r[0] for r in objects_rows(store)} and len({r[0] for r in objects_rows(store)}) == 6
        res = run_cli(*objects_args(store, tmp_path, "--batch", "--base-url", srv.url))
        assert res.exit_code == 0, res.output
        assert srv.created == ["batch_1", "batch_2"]
        second = [json.loads(x) for x in srv.files[srv.batches["batch_2"]["input_file_id"]].splitlines()]
        assert len(second) == 3  # only e2's three frames were asked again
        assert len({r[0] for r in objects_rows(store) if r[2] == "gazed"}) == 7
    finally:
        srv.close()
        fake.close()
