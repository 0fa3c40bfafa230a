"""streamgaze review's defences over real HTTP (the server on 127.0.0.1, port 0, in a thread): a foreign Host is
refused on every route (DNS rebinding) and writes nothing, a change needs the page's token and a same-origin
Origin or Referer, every response carries the security headers, and a busy port is one line and exit code 2."""
from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading

import pytest
from test_review_http import SR, make_review_world

from streamgaze.review.security import CSP, host_allowed, split_host
from streamgaze.review.server import make_review_server
from streamgaze.store import open_store

Q1 = f"{SR}/v1/q1"
ANSWER = json.dumps({"id": Q1, "mode": "answer", "answer": "B"})


class Served:
    def __init__(self, port: int, store):
        self.port, self.store = port, store
        self.origin = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, headers: dict | None = None, body: str | None = None):
        """(status, headers, body); a ``Host`` in headers replaces the one http.client would send."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = dict(headers or {})
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
            headers["Content-Length"] = str(len(body.encode()))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body.encode() if body is not None else None)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def token(self) -> str:
        _, _, page = self.request("GET", "/")
        return re.search(rb'<meta name="streamgaze-token" content="([^"]+)">', page).group(1).decode()

    def reviews(self) -> list[tuple]:
        with open_store(self.store, read_only=True) as s:
            return [tuple(r.values()) for r in s.rows("SELECT * FROM reviews ORDER BY created_at, question_id")]


@pytest.fixture
def served(tmp_path):
    store, qa = make_review_world(tmp_path / "w")
    srv = make_review_server(store, qa, host="127.0.0.1", port=0, reviewer="sec", cache_dir=tmp_path / "cache")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield Served(srv.server_port, store)
    srv.shutdown()
    thread.join(5)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "127.0.0.1.nip.io:{port}",
                                  "localhost:{port}@evil.example", ""])
def test_a_foreign_host_is_refused_on_every_route(served, host):
    host = host.format(port=served.port)
    for path in ("/", "/api/scores", "/api/questions", f"/q/{Q1}", "/static/review.js", f"/clip/{Q1}", "/nowhere"):
        status, headers, body = served.request("GET", path, {"Host": host})
        assert status == 421, (host, path)
        assert headers["content-type"].startswith("text/plain") and body.count(b"\n") == 1 and len(body) < 200
        assert b"streamgaze-token" not in body and b"accuracy" not in body


def test_a_foreign_host_cannot_answer_and_nothing_is_written(served):
    token = served.token()
    before = served.reviews()
    for host in ("evil.example", f"evil.example:{served.port}"):
        # even with the right token and an Origin matching the forged Host (what a rebound page would send)
        status, _, _ = served.request("POST", "/api/review", {
            "Host": host, "Origin": f"http://{host}", "X-StreamGaze-Token": token}, ANSWER)
        assert status == 421
    assert served.reviews() == before == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_the_loopback_names_with_the_port_are_served(served, host):
    status, _, body = served.request("GET", "/api/scores", {"Host": host.format(port=served.port)})
    assert status == 200 and json.loads(body) is not None


def test_a_change_without_the_token_or_from_another_origin_is_refused(served):
    token, origin = served.token(), served.origin
    refused = [
        {},  # neither
        {"Origin": origin},  # no token
        {"Origin": origin, "X-StreamGaze-Token": "not-the-token"},
        {"Origin": origin, "X-StreamGaze-Token": token[:-1]},
        {"Origin": origin, "X-StreamGaze-Token": "é" * 10},  # not ASCII: refused, not a crash
        {"X-StreamGaze-Token": token},  # no Origin, no Referer
        {"Origin": "http://evil.example", "X-StreamGaze-Token": token},
        {"Origin": f"http://localhost:{served.port}", "X-StreamGaze-Token": token},  # another origin than the Host's
        {"Origin": f"https://127.0.0.1:{served.port}", "X-StreamGaze-Token": token},
        {"Origin": "null", "X-StreamGaze-Token": token},
        {"Referer": "http://evil.example/page", "X-StreamGaze-Token": token},
        {"Origin": "http://evil.example", "Referer": f"{origin}/", "X-StreamGaze-Token": token},  # Origin wins
    ]
    for headers in refused:
        status, resp_headers, body = served.request("POST", "/api/review", headers, ANSWER)
        assert status == 403, headers
        assert "refused" in json.loads(body)["error"] and resp_headers["x-content-type-options"] == "nosniff"
    # every state-changing method, on any path
    for method in ("PUT", "DELETE", "PATCH"):
        assert served.request(method, "/api/review", {"Origin": origin}, ANSWER)[0] == 403
    assert served.request("POST", "/", {"Origin": origin}, "{}")[0] == 403
    assert served.reviews() == []


def test_a_change_with_the_token_from_the_same_origin_is_saved(served):
    token = served.token()
    status, _, body = served.request("POST", "/api/review", {"Origin": served.origin, "X-StreamGaze-Token": token}, ANSWER)
    assert status == 200 and json.loads(body)["correct"] is True
    # without Origin the Referer decides; localhost works as well as the bound address
    local = f"localhost:{served.port}"
    verdict = json.dumps({"id": Q1, "mode": "verify", "verdict": "valid"})
    status, _, _ = served.request("POST", "/api/review", {"Host": local, "Referer": f"http://{local}/q/{Q1}",
                                                          "X-StreamGaze-Token": token}, verdict)
    assert status == 200
    with open_store(served.store, read_only=True) as s:
        rows = s.rows("SELECT question_id, mode, answer, verdict FROM reviews ORDER BY mode")
    assert [(r["mode"], r["answer"], r["verdict"]) for r in rows] == [("answer", "B", None), ("verify", None, "valid")]


def test_every_response_carries_the_security_headers(served):
    token = served.token()
    responses = {
        "html": served.request("GET", f"/q/{Q1}?mode=answer"),
        "json": served.request("GET", "/api/scores"),
        "static": served.request("GET", "/static/review.js"),
        "css": served.request("GET", "/static/review.css"),
        "404 page": served.request("GET", "/nowhere"),
        "400 api": served.request("GET", "/api/questions?status=weird"),
        "405": served.request("GET", "/api/review"),
        "bad review": served.request("POST", "/api/review", {"Origin": served.origin, "X-StreamGaze-Token": token}, "{}"),
        "403": served.request("POST", "/api/review", {}, ANSWER),
        "421": served.request("GET", "/", {"Host": "evil.example"}),
    }
    for name, (status, headers, _) in responses.items():
        assert headers.get("content-security-policy") == CSP, name
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("x-frame-options") == "DENY", name
        assert headers.get("referrer-policy") in ("no-referrer", "same-origin"), name
    assert responses["html"][0] == 200 and responses["static"][0] == 200 and responses["404 page"][0] == 404
    for part in ("default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'",
                 "script-src 'self'", "object-src 'none'"):
        assert part in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "*" not in CSP
    # no inline script or handler in any page (the CSP would block it)
    for name in ("html", "404 page"):
        page = responses[name][2].decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", page) and not re.search(r"\son[a-z]+=", page), name
    assert re.search(rb'<meta name="streamgaze-token" content="[A-Za-z0-9_-]{32,}">', responses["html"][2])


def test_each_server_has_its_own_token(tmp_path):
    store, qa = make_review_world(tmp_path / "w")
    a = make_review_server(store, qa, port=0, cache_dir=tmp_path / "c")
    b = make_review_server(store, qa, port=0, cache_dir=tmp_path / "c")
    try:
        assert a.app.config["REVIEW_TOKEN"] != b.app.config["REVIEW_TOKEN"]
        assert len(a.app.config["REVIEW_TOKEN"]) >= 32
    finally:
        a.server_close()
        b.server_close()


def test_host_parsing():
    assert split_host("LocalHost:8765") == ("localhost", 8765)
    assert split_host("[::1]:8765") == ("[::1]", 8765)
    assert split_host("a:b") is None and split_host("x/y:1") is None and split_host("[::1") is None
    assert host_allowed("192.168.1.5:8765", "192.168.1.5", 8765)
    assert host_allowed("[::1]:8765", "::1", 8765)
    assert not host_allowed("192.168.1.6:8765", "192.168.1.5", 8765)
    # a wildcard bind: IP literals (which cannot be rebound) with the port, never a foreign name
    assert host_allowed("10.0.0.7:8765", "0.0.0.0", 8765)
    assert not host_allowed("evil.example:8765", "0.0.0.0", 8765)
    assert not host_allowed("10.0.0.7:8766", "0.0.0.0", 8765)


def review_cmd(store, qa, *args) -> list[str]:
    code = "import sys; from streamgaze.cli import main; sys.argv = ['streamgaze', *sys.argv[1:]]; main()"
    return [sys.executable, "-c", code, "review", "--store", str(store), "--qa", str(qa), *args]


def test_a_busy_port_is_one_line_and_exit_code_2(tmp_path):
    store, qa = make_review_world(tmp_path / "w")
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        out = subprocess.run(review_cmd(store, qa, "--port", str(port)), capture_output=True, text=True, timeout=120,
                             check=False)
    finally:
        holder.close()
    assert out.returncode == 2, out
    assert out.stderr == f"Error: port {port} on 127.0.0.1 is in use; pass --port N (0 picks a free one)\n"
    assert out.stdout == ""


def test_a_non_loopback_host_still_warns(tmp_path):
    store, qa = make_review_world(tmp_path / "w")
    proc = subprocess.Popen(review_cmd(store, qa, "--host", "0.0.0.0", "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        announce = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert first.startswith("warning: listening on 0.0.0.0") and "write reviews" in first
    assert announce.startswith("review: http://0.0.0.0:")
