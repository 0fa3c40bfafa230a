"""The ``openai`` object labeller against a real OpenAI-protocol HTTP server on 127.0.0.1.

The store is built by hand: a small video (grey frames with their number written on them) and seven episodes, each
with the gaze held at its own spot. The fake server decodes the region prompt of every request, finds the green gaze
dot, maps it to the nearest episode, and answers (or fails) as that episode's mode says.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from streamgaze.errors import ExternalCallsFailed
from streamgaze.objects.stage import run_objects
from streamgaze.store import open_store

W, H, FPS, SECONDS = 320, 240, 24, 10
CENTRES = {"e1": (0.2, 0.25), "e2": (0.5, 0.25), "e3": (0.8, 0.25), "e4": (0.2, 0.75), "e5": (0.5, 0.75),
           "e6": (0.8, 0.75), "e7": (0.5, 0.5)}
NAMES = {"e1": "Mugs", "e2": "kettle", "e3": "Bowls", "e4": "plate", "e5": "spoon", "e6": "toaster", "e7": "sponge"}
KEY = "sk-test-SECRET-key-4242"


def _episodes():
    return [(eid, 0.5 + 1.3 * i, 0.5 + 1.3 * i + 1.0) for i, eid in enumerate(CENTRES)]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("vid") / "video.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(FPS * SECONDS):
        img = np.full((H, W, 3), 128, np.uint8)
        cv2.putText(img, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        out.write(img)
    out.release()
    return path


def make_store(path: Path, video: Path) -> Path:
    eps = _episodes()
    t = np.arange(0, SECONDS, 1 / 120)
    x, y = np.full(len(t), 0.5), np.full(len(t), 0.05)
    for eid, t0, t1 in eps:
        m = (t >= t0 - 0.05) & (t <= t1 + 0.05)
        x[m], y[m] = CENTRES[eid]
    with open_store(path) as s, s.transaction():
        s.insert("videos", pa.table({"video_id": ["v1"], "dataset": ["test"], "path": [str(video)],
                                     "fps": [float(FPS)], "width": [W], "height": [H],
                                     "duration_s": [float(SECONDS)], "n_frames": [FPS * SECONDS]}))
        s.insert("gaze", pa.table({"video_id": ["v1"] * len(t), "t_s": t, "x": x, "y": y,
                                   "valid": [True] * len(t), "in_frame": [True] * len(t)}))
        s.insert("episodes", pa.table({"video_id": ["v1"] * len(eps), "episode_id": [e[0] for e in eps],
                                       "t_start": [e[1] for e in eps], "t_end": [e[2] for e in eps],
                                       "x": [CENTRES[e[0]][0] for e in eps], "y": [CENTRES[e[0]][1] for e in eps],
                                       "n_fixations": [1] * len(eps)}))
    return path


def decode(url: str) -> np.ndarray:
    import cv2

    assert url.startswith("data:image/jpeg;base64,")
    return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)


def green_centroid(img: np.ndarray) -> tuple[float, float] | None:
    b, g, r = (img[..., k].astype(int) for k in range(3))
    ys, xs = np.nonzero((g > 170) & (r < 110) & (b < 110))
    if len(xs) == 0:
        return None
    return (xs.mean() + 0.5) / img.shape[1], (ys.mean() + 0.5) / img.shape[0]


def answer(eid: str) -> str:
    return json.dumps({"gazed_object": {"name": NAMES[eid], "attributes": {"color": "Red", "material": "ceramic",
                                                                            "shape": None, "state": "clean",
                                                                            "texture": "smooth"},
                                        "caption": f"a {NAMES[eid]} on the counter"},
                       "fov_objects": ["Knives", NAMES[eid]], "outside_objects": ["Refrigerator", "hands", "sink"]})


class FakeOpenAI:
    """A threaded chat-completions server. ``modes[episode]`` picks what it does for that episode's frames."""

    def __init__(self, modes: dict[str, str] | None = None, key: str | None = None):
        self.modes = modes or {}
        self.key = key
        self.requests: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.frames_seen: dict[str, set[str]] = {}
        self.problems: list[str] = []
        self.frames_order: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, content, delay = server.handle(body, self.headers.get("Authorization"))
                if delay:
                    time.sleep(delay)
                if status == 200:
                    data = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": content}}],
                                       "usage": {"prompt_tokens": 1000, "completion_tokens": 50,
                                                 "total_tokens": 1050}}).encode()
                else:
                    data = json.dumps({"error": {"message": content, "type": "server_error"}}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        ThreadingHTTPServer.daemon_threads = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, body: dict, auth: str | None):
        with self.lock:
            self.requests.append(body)
            if self.key and auth != f"Bearer {self.key}":
                self.problems.append(f"bad auth {auth!r}")
            user = body["messages"][1]["content"]
            images = [p["image_url"]["url"] for p in user if p["type"] == "image_url"]
            if len(images) != 2:
                self.problems.append(f"{len(images)} images")
                return 400, "need 2 images", 0
            region = decode(images[0])
            c = green_centroid(region)
            if c is None:
                self.problems.append("no green dot")
                return 400, "no dot", 0
            eid = min(CENTRES, key=lambda e: (CENTRES[e][0] - c[0]) ** 2 + (CENTRES[e][1] - c[1]) ** 2)
            if max(abs(CENTRES[eid][0] - c[0]), abs(CENTRES[eid][1] - c[1])) > 0.02:
                self.problems.append(f"dot at {c}, gaze at {CENTRES[eid]}")
            frame = hashlib.sha256(images[0].encode()).hexdigest()
            self.frames_seen.setdefault(eid, set()).add(frame)
            n = self.attempts[frame] = self.attempts.get(frame, 0) + 1
            fixing = len(body["messages"]) > 2
        mode = self.modes.get(eid, "ok")
        if mode == "429_once" and n == 1:
            return 429, "rate limited", 0
        if mode == "500_once" and n == 1:
            return 500, "overloaded", 0
        if mode == "500_always":
            return 500, "overloaded", 0
        if mode == "timeout_once" and n == 1:
            return 200, answer(eid), 2.0
        if mode == "badjson_once" and not fixing:
            return 200, "Sure! The object is a mug.", 0
        if mode == "badjson_always":
            return 200, '{"gazed_object": {"attributes": {}}, "fov_objects": 3}', 0
        if mode == "vote":  # the first frame seen says bowl, the others plate
            with self.lock:
                order = self.frames_order.setdefault(eid, [])
                if frame not in order:
                    order.append(frame)
            name = "bowl" if order.index(frame) == 0 else "plates"
            return 200, json.dumps({"gazed_object": {"name": name}, "fov_objects": [], "outside_objects": []}), 0
        return 200, ("```json\n" + answer(eid) + "\n```") if eid == "e3" else answer(eid), 0

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def make(modes=None, key=None):
        s = FakeOpenAI(modes, key)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def _objects(path):
    with open_store(path, read_only=True) as s:
        return s.rows("SELECT episode_id, name, role, attributes, labeller FROM objects ORDER BY episode_id, role, name")


def _requests_table(path):
    with open_store(path, read_only=True) as s:
        return {r["episode_id"]: r for r in s.rows("SELECT * FROM label_requests ORDER BY episode_id")}


def _opts(srv, tmp_path, **kw):
    o = {"base_url": srv.url, "model": "test-vlm", "concurrency": 4, "backoff_s": 0.01, "timeout_s": 5.0,
         "cache_dir": str(tmp_path / "cache")}
    o.update(kw)
    return o


def test_labels_land_in_objects_and_rerun_sends_nothing(server, video, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    store = make_store(tmp_path / "s.duckdb", video)
    srv = server(key=KEY)
    opts = _opts(srv, tmp_path, usd_per_mtok_in=2.5, usd_per_mtok_out=10)
    opts.pop("cache_dir")  # default: beside the store
    summary = run_objects(store, "openai", opts)
    assert not srv.problems, srv.problems[:3]
    assert "7 episodes" in summary and "7 with a gazed object" in summary
    assert len(srv.requests) == 7 * 3  # three frames per episode, every one carrying both images
    assert (tmp_path / "s.duckdb.cache" / "openai").is_dir()
    body = srv.requests[0]
    assert body["model"] == "test-vlm" and body["response_format"] == {"type": "json_object"}
    crop = decode(body["messages"][1]["content"][2]["image_url"]["url"])
    assert green_centroid(crop) is None and min(crop.shape[:2]) >= 224  # the crop is of the raw frame
    rows = _objects(store)
    by = {}
    for r in rows:
        assert r["labeller"] == "openai"
        by.setdefault(r["episode_id"], {}).setdefault(r["role"], []).append(r["name"])
    for eid, name in NAMES.items():
        gazed = {"e1": "mug", "e3": "bowl"}.get(eid, name)
        assert by[eid] == {"gazed": [gazed], "fov": ["knife"], "outside": ["fridge", "hand", "sink"]}
    attrs = json.loads(next(r["attributes"] for r in rows if r["episode_id"] == "e1" and r["role"] == "gazed"))
    assert attrs == {"color": "Red", "material": "ceramic", "state": "clean", "texture": "smooth",
                     "caption": "a Mugs on the counter"}
    stats = _requests_table(store)
    assert set(stats) == set(NAMES)
    for st in stats.values():
        assert st["status"] == "ok" and st["n_requests"] == 3 and st["n_cached"] == 0 and not st["cached"]
        assert st["prompt_tokens"] == 3000 and st["completion_tokens"] == 150
        assert st["cost_usd"] == pytest.approx(3 * (1000 * 2.5 + 50 * 10) / 1e6)
        assert st["latency_s"] > 0 and st["model"] == "test-vlm"
    before = rows
    # a rerun sends nothing, and labels the same
    srv.requests.clear()
    run_objects(store, "openai", opts)
    assert srv.requests == []
    assert _objects(store) == before
    stats = _requests_table(store)
    assert all(st["cached"] and st["n_requests"] == 0 and st["n_cached"] == 3 and st["cost_usd"] == 0
               for st in stats.values())
    # the key is written nowhere
    files = [store, *(p for p in (tmp_path / "s.duckdb.cache").rglob("*") if p.is_file())]
    assert len(files) > 20
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p


def test_errors_are_retried_or_recorded(server, video, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    store = make_store(tmp_path / "s.duckdb", video)
    modes = {"e1": "429_once", "e2": "500_once", "e3": "ok", "e4": "badjson_once",
             "e5": "badjson_always", "e6": "500_always", "e7": "vote"}
    srv = server(modes, key=KEY)
    opts = _opts(srv, tmp_path, timeout_s=10.0, retries=3, api_key=KEY, concurrency=8)
    t0 = time.perf_counter()
    with pytest.raises(ExternalCallsFailed, match=r"3 of 21 requests failed \(HTTP 500\); 1 of 7 episodes kept"):
        run_objects(store, "openai", opts)  # e6's requests failed: written but for e6, exit code 1
    assert time.perf_counter() - t0 < 15
    assert not srv.problems, srv.problems[:3]
    stats = _requests_table(store)
    assert set(stats) == set(CENTRES)  # no episode lost
    rows = _objects(store)
    gazed = {}
    for r in rows:
        if r["role"] == "gazed":
            assert r["episode_id"] not in gazed  # never labelled twice
            gazed[r["episode_id"]] = r["name"]
    assert gazed == {"e1": "mug", "e2": "kettle", "e3": "bowl", "e4": "plate", "e7": "plate"}
    for eid in ("e1", "e2"):
        assert (eid, stats[eid]["status"], stats[eid]["n_requests"]) == (eid, "ok", 6)  # each frame: a failure, a retry
    assert stats["e3"]["status"] == "ok" and stats["e3"]["n_requests"] == 3
    assert stats["e4"]["status"] == "ok" and stats["e4"]["n_requests"] == 6  # invalid JSON, then the fix prompt
    fix = [b for b in srv.requests if len(b["messages"]) > 2]
    assert fix and "not valid" in fix[0]["messages"][-1]["content"] and fix[0]["messages"][-2]["role"] == "assistant"
    assert stats["e5"]["status"] == "failed" and "invalid JSON" in stats["e5"]["error"]
    assert "gazed_object.name" in stats["e5"]["error"] and stats["e5"]["n_requests"] == 6
    assert stats["e6"]["status"] == "failed" and "500" in stats["e6"]["error"] and stats["e6"]["n_requests"] == 9
    assert not any(r["episode_id"] in ("e5", "e6") for r in rows)
    assert KEY not in json.dumps(stats)
    # a rerun re-asks only what failed with an HTTP error (invalid replies are cached answers), labels the same
    n = len(srv.requests)
    with pytest.raises(ExternalCallsFailed):
        run_objects(store, "openai", opts)
    assert len(srv.requests) - n == 9  # e6: 3 frames x 3 attempts
    assert _objects(store) == rows
    assert set(_requests_table(store)) == set(CENTRES)


def test_timeout_is_retried(server, video, tmp_path):
    store = make_store(tmp_path / "s.duckdb", video)
    srv = server({"e1": "timeout_once"})  # e1's frames: the first attempt answers after 2 s
    run_objects(store, "openai", _opts(srv, tmp_path, timeout_s=0.7, retries=3, concurrency=21))
    stats = _requests_table(store)
    assert all(st["status"] == "ok" for st in stats.values()), stats
    assert 6 <= stats["e1"]["n_requests"] <= 9  # each frame: a timeout, then an answer (a loaded machine may add one)
    gazed = {r["name"] for r in _objects(store) if r["role"] == "gazed"}
    assert gazed == {"mug", "kettle", "bowl", "plate", "spoon", "toaster", "sponge"}


def test_radius_in_pixels_and_degrees(server, video, tmp_path):
    from streamgaze.errors import InputError

    store = make_store(tmp_path / "s.duckdb", video)
    srv = server()

    def red_radius(body):
        img = decode(body["messages"][1]["content"][1]["image_url"]["url"])
        b, g, r = (img[..., k].astype(int) for k in range(3))
        ys, xs = np.nonzero((r > 170) & (g < 110) & (b < 110))
        cx, cy = green_centroid(img)
        return float(np.median(np.hypot(xs / W - cx, (ys / H - cy) * H / W)))

    run_objects(store, "openai", _opts(srv, tmp_path, fov_radius_px=48))
    assert red_radius(srv.requests[0]) == pytest.approx(48 / W, abs=0.01)
    srv.requests.clear()
    run_objects(store, "openai", _opts(srv, tmp_path, fov_radius_deg=9, camera_hfov_deg=90))
    assert red_radius(srv.requests[0]) == pytest.approx(0.1, abs=0.01)
    with pytest.raises(InputError):
        run_objects(store, "openai", _opts(srv, tmp_path, fov_radius_deg=9))
    with pytest.raises(InputError):
        run_objects(store, "openai", {"base_url": srv.url})  # no model


def test_majority_and_schema_units():
    from streamgaze_builtin.labellers.openai import (
        Frame,
        FrameAnswer,
        FrameResult,
        episode_rows,
        frame_plan,
        parse_answer,
    )

    assert frame_plan(1.0, 2.0, 24, 1000, 3) == [30, 36, 42]
    assert frame_plan(1.0, 1.01, 24, 1000, 3) == [24]
    a = parse_answer('noise {"gazed_object": {"name": "Cups"}, "fov_objects": [{"name": "lid"}], "outside_objects": []} x')
    assert a.gazed_object.name == "Cups" and a.fov_objects == ["lid"]
    with pytest.raises(ValueError, match="gazed_object"):
        parse_answer('{"fov_objects": []}')
    mk = lambda g, fov=(): FrameResult(Frame("e", 0, 0.5, 0.5), FrameAnswer.model_validate(  # noqa: E731
        {"gazed_object": g and {"name": g}, "fov_objects": list(fov), "outside_objects": []}))
    rows = episode_rows("e", [mk("knife", ["cup"]), mk("Knives", ["cup", "lid"]), mk("cup", ["board"])], 0.5)
    assert [(r["name"], r["role"]) for r in rows] == [("knife", "gazed"), ("cup", "fov")]
    rows = episode_rows("e", [mk("bowl"), mk("cup"), mk(None)], 0.5)
    assert rows[0]["name"] == "bowl"  # a tie: the earliest frame's
    assert episode_rows("e", [FrameResult(Frame("e", 0, 0.5, 0.5), None, "boom")], 0.5) == []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli_objects(store: Path, url: str, tmp_path: Path, *extra: str):
    env = {**os.environ, "STREAMGAZE_PROGRESS": "0", "OPENAI_API_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", "objects", "--store", str(store), "--labeller",
                           "openai", "--base-url", url, "--model", "x", "--param", "retries=1",
                           "--param", f"cache_dir={tmp_path / 'cache'}", *extra],
                          capture_output=True, text=True, env=env, timeout=120)


def _labelled_store(server, video, tmp_path) -> Path:
    store = make_store(tmp_path / "s.duckdb", video)
    run_objects(store, "openai", _opts(server(), tmp_path, cache_dir=str(tmp_path / "first-cache")))
    assert len(_objects(store)) > 7
    return store


def test_unreachable_endpoint_keeps_the_objects_and_exits_1(server, video, tmp_path):
    """Every request refused: the objects rows are untouched, the failures are recorded, exit code 1, one line."""
    store = _labelled_store(server, video, tmp_path)
    before = _objects(store)
    r = _cli_objects(store, "http://127.0.0.1:9/v1", tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == ["Error: objects (openai): 21 of 21 requests failed (connection refused); "
                                     "the store's objects were kept"], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert _objects(store) == before
    stats = _requests_table(store)
    assert set(stats) == set(CENTRES) and all(st["status"] == "failed" for st in stats.values())


def test_some_requests_failing_keep_those_episodes_rows(server, video, tmp_path):
    """A server failing some requests: the failed episodes keep their previous rows, the others are relabelled."""
    store = _labelled_store(server, video, tmp_path)
    before = _objects(store)
    srv = server({"e2": "500_always", "e5": "500_always"})
    r = _cli_objects(store, srv.url, tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == ["Error: objects (openai): 6 of 21 requests failed (HTTP 500); 2 of 7 episodes "
                                     "kept their previous objects, the other 5 were labelled (5 with a gazed object); "
                                     "run it again to retry them"], r.stderr
    after = _objects(store)
    assert [x for x in after if x["episode_id"] in ("e2", "e5")] == [x for x in before if x["episode_id"] in ("e2", "e5")]
    assert {x["episode_id"] for x in after} == set(CENTRES)
    stats = _requests_table(store)
    assert stats["e2"]["status"] == stats["e5"]["status"] == "failed" and stats["e1"]["status"] == "ok"
    # the server answers again: the rerun labels what failed and exits 0
    srv.modes.clear()
    r = _cli_objects(store, srv.url, tmp_path)
    assert r.returncode == 0, r.stderr
    assert _objects(store) == before


def test_two_endpoints_share_the_requests(server, video, tmp_path):
    """`objects --base-url A --base-url B`: the requests are spread over both servers and every episode labelled."""
    store = make_store(tmp_path / "s.duckdb", video)
    a, b = server(), server()
    r = _cli_objects(store, a.url, tmp_path, "--base-url", b.url)
    assert r.returncode == 0, r.stderr
    assert len(a.requests) > 0 and len(b.requests) > 0 and len(a.requests) + len(b.requests) == 21
    assert {x["episode_id"] for x in _objects(store) if x["role"] == "gazed"} >= {"e1", "e2", "e3"}
