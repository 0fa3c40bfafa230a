"""Shards and merge (issue 18): ``--shard K/N`` on objects, generate and eval gives, shard by shard, exactly the
unsharded run's rows for its videos, and ``streamgaze merge`` joins stores, question folders and run folders back
into the unsharded result. The test world: the synthetic demo recording cloned under several video ids (one real
video file, real gaze, the annotation labeller), so every stage runs for real but fast."""
from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import store_from_truth
from streamgaze.cli import cli
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.runner import read_predictions, run_eval
from streamgaze.eval.score import score_run
from streamgaze.merge import merge
from streamgaze.objects.stage import run_objects
from streamgaze.shards import Shard, shard_number
from streamgaze.store import open_store
from streamgaze.tasks.generate import run_generate

CLONES = ["kitchen-a", "kitchen-b", "P01_03", "v/4", "ünï", "x9"]


def rows(store: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def world(small_world, small_truth, tmp_path_factory):
    """``base``: 7 videos with gaze, episodes and actions; ``full``: base + objects + questions (unsharded)."""
    import os

    os.environ["STREAMGAZE_WORKERS"] = "1"
    root = tmp_path_factory.mktemp("shards")
    base = store_from_truth(small_world, root / "base.duckdb", small_truth)
    with open_store(base) as store, store.transaction() as con:
        for new in CLONES:
            for table in ("videos", "gaze", "episodes", "actions"):
                cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
                select = ", ".join("?" if c == "video_id" else c for c in cols)
                con.execute(f"INSERT INTO {table} SELECT {select} FROM {table} WHERE video_id = ?", [new, small_world.video_id])
    full = root / "full.duckdb"
    shutil.copy(base, full)
    truth = {"truth": str(small_world.truth)}
    run_objects(full, options=truth)
    run_generate(full, root / "qa")
    return {"root": root, "base": base, "full": full, "qa": root / "qa", "truth": truth}


def copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


# -- the split ------------------------------------------------------------------------------------------------
def test_shard_is_a_stable_sha256_split():
    # pinned: sha256("kitchen-a") mod N, the same on every machine and process (never Python's salted hash())
    digest = int.from_bytes(hashlib.sha256(b"kitchen-a").digest()[:8], "big")
    assert [shard_number("kitchen-a", n) for n in (1, 2, 3, 4)] == [1 + digest % n for n in (1, 2, 3, 4)]
    assert str(Shard.parse(" 2/8")) == "2/8" and Shard.parse("8/8").holds("x") in (True, False)


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True), st.integers(1, 9))
def test_every_video_is_in_exactly_one_shard(ids, n):
    for vid in ids:
        assert [k for k in range(1, n + 1) if Shard(k, n).holds(vid)] == [shard_number(vid, n)]


@pytest.mark.parametrize("value", ["3/2", "0/2", "a/b", "1/0", "2", "-1/2", "1/2/3"])
def test_a_bad_shard_is_a_usage_error(value, tmp_path):
    for command in (["generate", "--store", str(tmp_path / "s.duckdb")], ["objects", "--store", str(tmp_path / "s.duckdb")],
                    ["eval", "--qa", str(tmp_path), "--model", "random", "--out", str(tmp_path / "r")]):
        result = CliRunner().invoke(cli, [*command, "--shard", value])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and "--shard" in result.output
    assert not list(tmp_path.iterdir())


# -- objects --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3])
def test_objects_shards_merge_to_the_unsharded_store(world, tmp_path, n):
    shards = []
    for k in range(1, n + 1):
        path = copy(world["base"], tmp_path / f"s{k}.duckdb")
        result = CliRunner().invoke(cli, ["objects", "--store", str(path), "--truth", world["truth"]["truth"], "--shard", f"{k}/{n}"])
        assert result.exit_code == 0, result.output
        labelled = {r[0] for r in rows(path, "objects")}
        assert labelled and all(Shard(k, n).holds(v) for v in labelled)
        shards.append(path)
    merge(shards, tmp_path / "m.duckdb")
    for table in ("objects", "videos", "gaze", "episodes", "actions"):
        assert rows(tmp_path / "m.duckdb", table) == rows(world["full"], table) if table == "objects" else \
            rows(tmp_path / "m.duckdb", table) == rows(world["base"], table)
    assert rows(tmp_path / "m.duckdb", "meta") == [("schema_version", "1")]  # the shard notes are gone


def test_a_shard_owns_its_videos_objects_over_older_rows(world, tmp_path):
    """Two copies of a labelled store; each relabels its shard (here: one video's rows changed, as a new labeller
    would): the merge takes each video's rows from the store whose shard covers it, not the stale copy."""
    a, b = copy(world["full"], tmp_path / "a.duckdb"), copy(world["full"], tmp_path / "b.duckdb")
    run_objects(a, options=world["truth"], shard=Shard(1, 2))
    run_objects(b, options=world["truth"], shard=Shard(2, 2))
    vid = next(v for v in [*CLONES] if Shard(2, 2).holds(v))
    with open_store(b) as store, store.transaction() as con:  # b's relabelled rows for its own video
        con.execute("UPDATE objects SET name = 'relabelled ' || name WHERE video_id = ?", [vid])
    merge([a, b], tmp_path / "m.duckdb")
    merged = rows(tmp_path / "m.duckdb", "objects")
    assert {r[2] for r in merged if r[0] == vid} == {"relabelled " + r[2] for r in rows(world["full"], "objects") if r[0] == vid}
    # without the shard notes the two stores disagree about that video: refused, nothing written
    for path in (a, b):
        with open_store(path) as store, store.transaction() as con:
            con.execute("DELETE FROM meta WHERE key LIKE 'shard:%'")
    result = CliRunner().invoke(cli, ["merge", str(a), str(b), "--out", str(tmp_path / "m2.duckdb")])
    assert result.exit_code == 2 and "table objects" in result.output and repr(vid) in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m2.duckdb").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_stores_with_different_base_rows_are_refused(world, tmp_path):
    a, b = copy(world["base"], tmp_path / "a.duckdb"), copy(world["base"], tmp_path / "b.duckdb")
    with open_store(b) as store, store.transaction() as con:
        con.execute("UPDATE episodes SET t_end = t_end + 0.5 WHERE video_id = 'x9' AND episode_id = 'e1'")
        con.execute("INSERT INTO actions VALUES ('only-in-b', 0, 1, 'stir')")  # held by one store only: fine
    result = CliRunner().invoke(cli, ["merge", str(a), str(b), "--out", str(tmp_path / "m.duckdb")])
    assert result.exit_code == 2 and "table episodes, video_id 'x9'" in result.output, result.output
    assert not (tmp_path / "m.duckdb").exists()
    with open_store(b) as store, store.transaction() as con:
        con.execute("UPDATE episodes SET t_end = t_end - 0.5 WHERE video_id = 'x9' AND episode_id = 'e1'")
    merge([a, b], tmp_path / "m.duckdb")
    assert ("only-in-b", 0.0, 1.0, "stir") in rows(tmp_path / "m.duckdb", "actions")


# -- generate -------------------------------------------------------------------------------------------------
def question_lines(folder: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text(encoding="utf-8").splitlines() for p in sorted(folder.glob("*.jsonl"))}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 5))
@example(n=2)
def test_generate_shards_are_the_unsharded_questions(world, tmp_path_factory, n):
    """Question for question: each shard's questions are the unsharded run's of its videos; the shards written one
    after another into one store leave the unsharded qa_items; the merged folder is the unsharded one byte for byte."""
    tmp = tmp_path_factory.mktemp("gen")
    store = copy(world["full"], tmp / "s.duckdb")
    with open_store(store) as st_, st_.transaction() as con:
        con.execute("DELETE FROM qa_items")
        con.execute("DELETE FROM qa_skips")
    whole = question_lines(world["qa"])
    for k in range(1, n + 1):
        run_generate(store, tmp / f"qa{k}", shard=Shard(k, n))
        part = question_lines(tmp / f"qa{k}")
        assert part.keys() == whole.keys()
        for name, lines in whole.items():
            assert part[name] == [line for line in lines if Shard(k, n).holds(json.loads(line)["video_id"])]
        assert json.loads((tmp / f"qa{k}" / "generation_report.json").read_text())["shard"] == f"{k}/{n}"
    for table in ("qa_items", "qa_skips"):
        assert rows(store, table) == rows(world["full"], table)
    folders = [tmp / f"qa{k}" for k in range(n, 0, -1)]  # any order
    if n == 1:
        folders.append(folders[0])
        with pytest.raises(Exception, match="given twice"):
            merge(folders, tmp / "qa")
        return
    merge(folders, tmp / "qa")
    for name in [*whole, "generation_report.json"]:
        assert (tmp / "qa" / name).read_bytes() == (world["qa"] / name).read_bytes(), name


def test_generate_shard_stores_merge_to_the_unsharded_store(world, tmp_path):
    stores = [copy(world["base"], tmp_path / f"s{k}.duckdb") for k in (1, 2)]
    for k, store in enumerate(stores, start=1):
        run_objects(store, options=world["truth"], shard=Shard(k, 2))
        result = CliRunner().invoke(cli, ["generate", "--store", str(store), "--out", str(tmp_path / f"qa{k}"), "--shard", f"{k}/2"])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["merge", str(stores[1]), str(stores[0]), "--out", str(tmp_path / "m.duckdb")])
    assert result.exit_code == 0, result.output
    for table in ("objects", "qa_items", "qa_skips", "videos", "episodes"):
        assert rows(tmp_path / "m.duckdb", table) == rows(world["full"], table), table


def test_question_folder_refusals(world, tmp_path):
    run_generate(copy(world["full"], tmp_path / "a.duckdb"), tmp_path / "a", shard=Shard(1, 2))
    run_generate(copy(world["full"], tmp_path / "b.duckdb"), tmp_path / "b", shard=Shard(2, 2), seed=7)
    run_generate(copy(world["full"], tmp_path / "c.duckdb"), tmp_path / "c", shard=Shard(2, 3))
    for folders, message in (([world["qa"], tmp_path / "a"], "made without --shard"),
                             ([tmp_path / "a", tmp_path / "b"], "other settings"),
                             ([tmp_path / "a", tmp_path / "c"], "same split")):
        result = CliRunner().invoke(cli, ["merge", *map(str, folders), "--out", str(tmp_path / "m")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "m").exists()


# -- eval -----------------------------------------------------------------------------------------------------
def without_run(score: dict) -> dict:
    return {k: v for k, v in score.items() if k != "run"}


def answered(run: Path) -> dict:
    return {(r["question_id"], r["point_idx"]): (r["response"], r["parsed"], r["outcome"], r.get("frames"))
            for r in read_predictions(run / "predictions.jsonl")}


@pytest.mark.parametrize("n", [2, 3])
def test_eval_shards_merge_to_the_unsharded_run(world, tmp_path, n):
    run_eval(world["qa"], EvalConfig("first-option", tmp_path / "whole"))
    video = {json.loads(line)["id"]: json.loads(line)["video_id"] for lines in question_lines(world["qa"]).values() for line in lines}
    for k in range(1, n + 1):
        result = CliRunner().invoke(cli, ["eval", "--qa", str(world["qa"]), "--model", "first-option",
                                          "--out", str(tmp_path / f"r{k}"), "--shard", f"{k}/{n}"])
        assert result.exit_code == 0, result.output
        info = json.loads((tmp_path / f"r{k}" / "run.json").read_text())
        assert info["shard"] == f"{k}/{n}"
        assert answered(tmp_path / f"r{k}") and all(Shard(k, n).holds(video[q]) for q, _ in answered(tmp_path / f"r{k}"))
        # a shard scores on its own questions: every one answered, none missing
        assert all(t["missing"] == 0 for t in score_run(tmp_path / f"r{k}")["tasks"].values())
    result = CliRunner().invoke(cli, ["merge", *[str(tmp_path / f"r{k}") for k in range(n, 0, -1)], "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert answered(tmp_path / "m") == answered(tmp_path / "whole")
    assert without_run(score_run(tmp_path / "m")) == without_run(score_run(tmp_path / "whole"))
    # a rerun of the unsharded eval in the merged folder has nothing left to ask
    assert "asked 0" in run_eval(world["qa"], EvalConfig("first-option", tmp_path / "m"))


class HashChatServer:
    """A loopback OpenAI-compatible chat server whose reply depends only on the prompt text: a letter A-D for a
    multiple-choice question, Yes/No for a proactive one (a deterministic model behind real HTTP)."""

    def __init__(self):
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
                h = hashlib.sha256(text.encode()).digest()[0]
                reply = ("Yes" if h % 2 else "No") if "yes or no" in text.lower() else "ABCD"[h % 4]
                outer.count += 1
                data = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_eval_shards_against_a_loopback_server_merge_to_the_unsharded_run(world, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    qa = tmp_path / "qa"
    qa.mkdir()
    for name in ("past_scene_recall.jsonl", "present_object_identification_easy.jsonl"):
        if (world["qa"] / name).exists():
            shutil.copy(world["qa"] / name, qa / name)
    if not list(qa.iterdir()):  # the task set changed: any two small files
        for p in sorted(world["qa"].glob("*.jsonl"), key=lambda p: p.stat().st_size)[:2]:
            shutil.copy(p, qa / p.name)
    server = HashChatServer()
    try:
        def run(out, shard=None):
            return run_eval(qa, EvalConfig("openai:hash", out, base_url=server.url, store=world["full"], frames=1,
                                           gaze_prompt="overlay", shard=shard))
        run(tmp_path / "whole")
        sent = server.count
        run(tmp_path / "r1", "1/2")
        run(tmp_path / "r2", "2/2")
        assert server.count == 2 * sent and sent > 0  # the shards together asked exactly what the whole run asked
    finally:
        server.close()
    merge([tmp_path / "r2", tmp_path / "r1"], tmp_path / "m")
    assert answered(tmp_path / "m") == answered(tmp_path / "whole")
    assert without_run(score_run(tmp_path / "m")) == without_run(score_run(tmp_path / "whole"))


def test_run_merge_refusals(world, tmp_path):
    def ev(out, model="first-option", shard=None, qa=world["qa"], **kw):
        run_eval(qa, EvalConfig(model, tmp_path / out, shard=shard, **kw))
        return str(tmp_path / out)

    other_qa = tmp_path / "qa-other"
    shutil.copytree(world["qa"], other_qa)
    first = next(other_qa.glob("*.jsonl"))
    first.write_text("".join(first.read_text().splitlines(keepends=True)[1:]))
    a = ev("a", shard="1/2")
    cases = [
        ([a, ev("b", model="random", shard="2/2")], "model"),
        ([a, ev("c", shard="2/2", gaze_prompt="overlay")], "gaze_prompt"),
        ([a, ev("d", shard="2/2", prompt_style="reference")], "prompt_style"),
        ([a, ev("e", shard="2/2", qa=other_qa)], "other questions"),
        ([a, ev("f", shard="2/3")], "same split"),
        ([a, ev("g")], "not a shard's run"),
        ([ev("h"), ev("i")], "answered in"),
        ([a, str(world["full"])], "one kind"),
        ([a, str(tmp_path / "nowhere")], "no such"),
    ]
    for inputs, message in cases:
        result = CliRunner().invoke(cli, ["merge", *inputs, "--out", str(tmp_path / "m")])
        assert result.exit_code == 2 and message in result.output, (message, result.output)
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "m").exists()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["merge", a, ev("z", shard="2/2"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]
    result = CliRunner().invoke(cli, ["merge", a, "--out", str(tmp_path / "n")])
    assert result.exit_code == 2 and "two or more" in result.output


def test_a_run_folder_keeps_its_shard(world, tmp_path):
    run_eval(world["qa"], EvalConfig("first-option", tmp_path / "r", shard="1/2"))
    result = CliRunner().invoke(cli, ["eval", "--qa", str(world["qa"]), "--model", "first-option", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "shard 1/2" in result.output, result.output


def test_a_bad_store_among_the_inputs_is_one_line(world, tmp_path):
    (tmp_path / "text.duckdb").write_text("not a store")
    result = CliRunner().invoke(cli, ["merge", str(world["base"]), str(tmp_path / "text.duckdb"), "--out", str(tmp_path / "m.duckdb")])
    assert result.exit_code == 2 and "text.duckdb" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.duckdb"]
    result = CliRunner().invoke(cli, ["merge", str(world["base"]), str(world["full"]), "--out", str(world["base"])])
    assert result.exit_code == 2 and "one of the inputs" in result.output
