"""The command line under bad input, failing endpoints and keys written into URLs, run as the user runs it
(``python -m streamgaze.cli`` in a subprocess): the exit code (2 bad input, 1 failed requests), exactly one
``Error:`` line, never a traceback or a raw control character, nothing written, and never a key in any output."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what may never reach a terminal (\t and \n may)

MCQ = {"id": "q1", "task": "past_scene_recall", "family": "past", "video_id": "v1", "question": "Which room?",
       "options": ["kitchen", "hall", "garden", "garage"], "answer": "A", "clip": [0.0, 5.0], "time_s": 5.0}
MCQ2 = {**MCQ, "id": "q2", "question": "Which door?"}
PRO = {"id": "p1", "task": "proactive_object_appearance_alert", "family": "proactive", "video_id": "v1",
       "question": "Tell me when a cup appears.", "options": [], "answer": "", "clip": [0.0, 9.0], "time_s": 2.0,
       "evidence": {"target": "cup"}, "test_points": [{"t_s": 4.0, "expected": "no"}, {"t_s": 8.0, "expected": "yes"}]}


# -- helpers ------------------------------------------------------------------------------------------
def run(args, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(STREAMGAZE_PROGRESS="0", STREAMGAZE_STRICT_PLUGINS="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", errors="backslashreplace", timeout=timeout)


def one_error(proc: subprocess.CompletedProcess, code: int) -> str:
    """Exit ``code``, exactly one ``Error:`` line (returned), no traceback, no raw control character."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, not {code}:\n{out[-2000:]}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert "Error:" not in proc.stdout
    assert "Traceback" not in out, out[-2000:]
    assert not CONTROL.search(out), repr(out[-500:])
    return errors[0]


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_qa(folder: Path, *questions: dict, name: str = "past_scene_recall.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return folder


class Server:
    """A loopback OpenAI-compatible endpoint: answers "A." (and "No" to proactive prompts), or ``status`` when
    not 200; records the model name of each request (each case asks under its own name)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.models: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.models.append(body["model"])
                if outer.status != 200:
                    data = json.dumps({"error": {"message": "injected failure", "type": "x", "code": outer.status}})
                else:
                    data = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": "A."}}],
                                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                data = data.encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.daemon_threads = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    with Server() as srv:
        yield srv


class Batch:
    """Cases whose commands run side by side (a few at a time) when the first of them is asked for: each case
    is ``setup(tmp) -> argv``; `result` returns ``(tmp, setup's extra, CompletedProcess)``."""

    def __init__(self, root: Path, cases: dict):
        self.root, self.cases, self.done = root, cases, None

    def _one(self, name):
        tmp = self.root / re.sub(r"[^\w.-]", "_", name)
        tmp.mkdir()
        args, extra = self.cases[name](tmp)
        return tmp, extra, run(args, tmp)

    def result(self, name):
        if self.done is None:
            with ThreadPoolExecutor(4) as pool:
                self.done = dict(zip(self.cases, pool.map(self._one, self.cases)))
        return self.done[name]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- 1. numeric options: rejected with one line naming the option, exit 2, nothing written ---------------
EVAL = ["eval", "--qa", "qa", "--model", "random", "--out", "R"]
OVERLAY = ["render", "overlay", "--store", "s.duckdb", "--out", "O"]
NUMERIC = [
    (EVAL, "--concurrency", "0"),
    (EVAL, "--concurrency", "-1"),
    (EVAL, "--frames", "-3"),
    (EVAL, "--frames", "0"),
    (EVAL, "--poll-s", "nan"),
    (EVAL, "--poll-s", "0"),
    (EVAL, "--tolerance-s", "inf"),
    (EVAL, "--tolerance-s", "-1"),
    (EVAL, "--seed", "-1"),
    (["demo", "--out", "D"], "--minutes", "nan"),
    (["demo", "--out", "D"], "--minutes", "inf"),
    (["demo", "--out", "D"], "--minutes", "0"),
    (["objects", "--store", "s.duckdb"], "--concurrency", "0"),
    (["generate", "--store", "s.duckdb", "--out", "Q"], "--seed", "nan"),
    (OVERLAY, "--scale", "nan"),
    (OVERLAY, "--scale", "-inf"),
    (OVERLAY, "--fps", "nan"),
    (OVERLAY, "--fps", "inf"),
    (["review", "--store", "s.duckdb", "--qa", "qa"], "--port", "70000"),
    (["review", "--store", "s.duckdb", "--qa", "qa"], "--port", "-1"),
    (["fixations", "--store", "s.duckdb"], "--param", "min_duration_ms=NaN"),
]


NUMERIC_IDS = [f"{c[0]}{'-' + c[1] if c[0] == 'render' else ''}{o}={v}" for c, o, v in NUMERIC]


def _numeric_case(command, option, value, tmp):
    write_qa(tmp / "qa", MCQ)
    return [*command, option, value], listing(tmp)


@pytest.fixture(scope="module")
def numeric(tmp_path_factory):
    return Batch(tmp_path_factory.mktemp("numeric"), {i: partial(_numeric_case, *c) for i, c in zip(NUMERIC_IDS, NUMERIC)})


@pytest.mark.parametrize("command, option, value", NUMERIC, ids=NUMERIC_IDS)
def test_numeric_option_is_rejected_not_clamped(numeric, request, command, option, value):
    tmp, before, proc = numeric.result(request.node.callspec.id)
    line = one_error(proc, 2)
    assert option in line and "Usage:" not in proc.stderr, proc.stderr
    assert listing(tmp) == before, "something was written"
    assert not (tmp / "R").exists() and not (tmp / "D").exists()


# -- 2. bad question files: one line naming the file and row, exit 2, no request sent ---------------------
BAD_JSONL = {
    "t_s-not-a-number": json.dumps({**PRO, "test_points": [{"t_s": "soon", "expected": "yes"}]}).encode(),
    "t_s-nan": json.dumps({**PRO, "test_points": [{"t_s": float("nan"), "expected": "yes"}]}).encode(),
    "latin-1": json.dumps({**MCQ, "question": "Which caf\u00e9?"}, ensure_ascii=False).encode("latin-1"),
    "line-is-a-list": b"[1, 2, 3]",
    "line-is-a-number": b"42",
    "missing-fields": json.dumps({k: v for k, v in MCQ.items() if k not in ("answer", "clip")}).encode(),
    "time_s-nan": json.dumps({**MCQ, "time_s": float("nan")}).encode(),
    "clip-inf": json.dumps({**MCQ, "clip": [0, float("inf")]}).encode(),
    "options-not-strings": json.dumps({**MCQ, "options": [1, 2]}).encode(),
    "not-json": b'{"id": "q9",',
}


def _release(**q) -> bytes:
    item = {"video_path": "videos/v1.mp4", "response_time": "00:10",
            "questions": [{"question": "Which room?", "time_stamp": "00:05", "answer": "A",
                           "options": ["A. kitchen", "B. hall", "C. garden", "D. garage"], **q}]}
    return json.dumps([item], ensure_ascii=False).encode("utf-8")


BAD_RELEASE = {
    "release-latin-1": _release(question="Which caf\u00e9?").decode("utf-8").encode("latin-1"),
    "release-time-soon": _release(time_stamp="soon"),
    "release-time-nan": _release(time_stamp="nan"),
    "release-realtime-inf": json.dumps([{"video_path": "v1.mp4", "questions": [
        {"question": "Cup?", "time_stamp": "00:02", "target_object": "cup",
         "test_info": [{"realtime": "inf", "type": 1}]}]}]).encode(),
    "release-item-is-a-number": b"[42]",
    "release-no-options": _release(options=[]),
}


def _bad_file_case(server, case, tmp):
    qa = write_qa(tmp / "qa", MCQ)  # a good file first: nothing of it is sent either
    if case in BAD_JSONL:
        name = "proactive_object_appearance_alert.jsonl" if "t_s" in case else "z_bad.jsonl"
        (qa / name).write_bytes(json.dumps(MCQ2).encode() + b"\n" + BAD_JSONL[case] + b"\n")
        row = "row 2"
    else:
        name = "proactive_object_appearance_alert.json" if "realtime" in case else "past_scene_recall_x.json"
        (qa / name).write_bytes(BAD_RELEASE[case])
        row = "row 1" if "latin" not in case else ""
    args = ["eval", "--qa", qa, "--model", f"text-only:{case}", "--base-url", f"http://127.0.0.1:{server.port}/v1",
            "--out", tmp / "R"]
    return args, (name, row)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, server):
    cases = {c: partial(_bad_file_case, server, c) for c in [*BAD_JSONL, *BAD_RELEASE]}
    return Batch(tmp_path_factory.mktemp("bad"), cases)


@pytest.mark.parametrize("case", [*BAD_JSONL, *BAD_RELEASE])
def test_bad_question_file_is_one_line_before_any_request(bad_files, server, case):
    tmp, (name, row), proc = bad_files.result(case)
    line = one_error(proc, 2)
    assert name in line and row in line, line
    assert case not in server.models, "a request was sent"
    assert not (tmp / "R").exists()


def test_streaming_needs_time_s(tmp_path, server):
    qa = write_qa(tmp_path / "qa", {k: v for k, v in PRO.items() if k != "time_s"}, name="proactive_object_appearance_alert.jsonl")
    proc = run(["eval", "--qa", qa, "--model", "text-only:m", "--base-url", f"http://127.0.0.1:{server.port}/v1",
                "--out", tmp_path / "R", "--streaming"], tmp_path)
    assert "time_s" in one_error(proc, 2)
    assert not (tmp_path / "R").exists()


# -- 3. failed requests: exit 1, the summary and one line with the counts; a rerun retries them ------------
def test_failed_requests_exit_1_and_a_rerun_retries_them(tmp_path):
    qa = write_qa(tmp_path / "qa", MCQ, MCQ2)
    with Server(status=400) as srv:
        args = ["eval", "--qa", qa, "--model", "text-only:m", "--base-url", f"http://127.0.0.1:{srv.port}/v1",
                "--out", tmp_path / "R"]
        proc = run(args, tmp_path)
        line = one_error(proc, 1)
        assert re.fullmatch(r"Error: 2 of 2 requests failed \(last: .*400.*\); rerun the same command to retry them", line), line
        assert "asked 2 (error 2)" in proc.stdout
        rows = [json.loads(x) for x in (tmp_path / "R" / "predictions.jsonl").read_text().splitlines()]
        assert [r["outcome"] for r in rows] == ["error", "error"]
        srv.status = 200
        again = run(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "asked 2 (correct 2)" in again.stdout and "Error" not in again.stderr


def test_unreachable_endpoint_exits_1(tmp_path):
    qa = write_qa(tmp_path / "qa", MCQ)
    port = closed_port()
    proc = run(["eval", "--qa", qa, "--model", "text-only:m", "--out", tmp_path / "R",
                "--base-url", f"http://user:sk-unreach1@127.0.0.1:{port}/v1?token=sk-unreach2"], tmp_path)
    line = one_error(proc, 1)
    assert line.startswith("Error: 1 of 1 requests failed (last: "), line
    assert "sk-" not in proc.stdout + proc.stderr
    for name in ("run.json", "predictions.jsonl"):
        assert "sk-" not in (tmp_path / "R" / name).read_text()


# -- 4. keys written into --base-url never reach a file or the terminal -----------------------------------
SECRETS = {
    "userinfo": "http://user:sk-userinfo0001@127.0.0.1:{port}/v1",
    "key-as-user": "http://sk-useronly0002@127.0.0.1:{port}/v1",
    "api-key": "http://127.0.0.1:{port}/v1?api-key=sk-query0003",
    "key": "http://127.0.0.1:{port}/v1?key=sk-query0004",
    "token": "http://127.0.0.1:{port}/v1?token=sk-query0005&mode=x",
    "access_token": "http://127.0.0.1:{port}/v1?access_token=sk-query0006",
}


def _secret_case(server, form, tmp):
    qa = write_qa(tmp / "qa", MCQ)
    if form.startswith("bad-scheme-"):  # a bad URL: the error line does not echo the key either
        url = SECRETS[form.removeprefix("bad-scheme-")].format(port=server.port).replace("http://", "ftp://")
    else:
        url = SECRETS[form].format(port=server.port)
    return ["eval", "--qa", qa, "--model", f"text-only:{form}", "--base-url", url, "--out", tmp / "R"], None


@pytest.fixture(scope="module")
def secrets(tmp_path_factory, server):
    forms = [*SECRETS, *(f"bad-scheme-{f}" for f in SECRETS)]
    return Batch(tmp_path_factory.mktemp("secrets"), {f: partial(_secret_case, server, f) for f in forms})


@pytest.mark.parametrize("form", SECRETS)
def test_key_in_base_url_is_redacted_everywhere(secrets, server, form):
    tmp, _, proc = secrets.result(form)
    assert proc.returncode == 0, proc.stderr
    assert server.models.count(f"text-only:{form}".split(":", 1)[1]) == 1  # the request went out, to the real URL
    run_json = (tmp / "R" / "run.json").read_text()
    written = run_json + (tmp / "R" / "predictions.jsonl").read_text() + proc.stdout + proc.stderr
    assert "sk-" not in written
    assert "***" in json.loads(run_json)["endpoint"]


@pytest.mark.parametrize("form", SECRETS)
def test_key_in_a_bad_base_url_is_not_echoed(secrets, form):
    tmp, _, proc = secrets.result(f"bad-scheme-{form}")
    assert "sk-" not in one_error(proc, 2)
    assert not (tmp / "R").exists()


# -- 5. error lines never carry raw control characters ----------------------------------------------------
def test_control_characters_are_escaped_in_error_lines(tmp_path):
    qa = write_qa(tmp_path / "qa", MCQ)
    (qa / "z\x1b[31mred\x07.jsonl").write_bytes(b"[1]\n")
    proc = run(["eval", "--qa", qa, "--model", "random", "--out", tmp_path / "R"], tmp_path)
    line = one_error(proc, 2)
    assert "z\\x1b[31mred\\x07.jsonl" in line, line
    bad_model = run(["eval", "--qa", qa, "--model", "no\x1b]0;title\x07such\x9b", "--out", tmp_path / "R"], tmp_path)
    assert "\\x1b" in one_error(bad_model, 2)
    assert not (tmp_path / "R").exists()


def test_missing_store_is_bad_input_before_the_run_folder(tmp_path, server):
    qa = write_qa(tmp_path / "qa", MCQ)
    proc = run(["eval", "--qa", qa, "--model", "openai:no-store", "--base-url", f"http://127.0.0.1:{server.port}/v1",
                "--out", tmp_path / "R"], tmp_path)
    assert "store.duckdb" in one_error(proc, 2)
    assert not (tmp_path / "R").exists() and "no-store" not in server.models


# -- the helpers themselves (in process) -----------------------------------------------------------------
@pytest.mark.parametrize("url, shown", [
    ("http://user:sk-a1@h:8/v1", "http://***@h:8/v1"),
    ("http://sk-a2@h/v1", "http://***@h/v1"),
    ("http://h/v1?api-key=sk-a3&api-version=2024", "http://h/v1?api-key=***&api-version=2024"),
    ("https://h/v1?key=sk-a4", "https://h/v1?key=***"),
    ("http://h/v1?token=sk-a5", "http://h/v1?token=***"),
    ("http://h/v1?access_token=sk-a6", "http://h/v1?access_token=***"),
    ("http://h/v1?client_secret=sk-a7&password=sk-a8", "http://h/v1?client_secret=***&password=***"),
    ("http://localhost:8000/v1", "http://localhost:8000/v1"),
])
def test_redact_url(url, shown):
    from streamgaze.llm.client import redact, redact_url, url_secrets
    from streamgaze.plugins import api

    assert redact_url(url) == shown and api.redact_url is redact_url
    assert "sk-" not in redact(f"APIConnectionError: cannot reach {url}: refused")
    assert all(s.startswith("sk-") for s in url_secrets(url) if s != "user")


def test_printable_escapes_only_what_is_still_unprintable():
    from streamgaze.errors import printable as escape_controls

    assert escape_controls("a\x1b[31mb\x00c\x9b\x7f\u202e") == "a\\x1b[31mb\\x00c\\x9b\\x7f\\u202e"
    assert escape_controls("already \\x1b escaped, caf\u00e9") == "already \\x1b escaped, caf\u00e9"


def test_labeller_settings_never_show_the_url():
    from streamgaze_builtin.labellers.openai import Settings

    s = Settings.from_options({"model": "m", "base_url": "http://u:sk-lab1@127.0.0.1:9/v1?token=sk-lab2"}, Path("s.duckdb"))
    assert "sk-" not in repr(s) and s.base_url.startswith("http://u:sk-lab1@")  # the request keeps the real URL
