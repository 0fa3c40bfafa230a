"""Local chat-completions servers for the benchmarks and tests of concurrent model calls (bench_eval.py,
bench_labeller.py, bench_client.py, tests/test_client_endpoints.py): they answer every request with one fixed
reply after a fixed delay, and can act as a rate-limited or failing endpoint. What is measured is how many requests
are in flight, refused and answered, so the server only counts them and waits."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowChatServer:
    """``url`` is the base URL to hand an OpenAI client; ``count``, ``max_in_flight``, ``first`` and ``last``
    (perf_counter of the first request and the last reply) say what reached it.

    Misbehaving on purpose:
    - ``capacity``: at most this many requests in flight; one more is answered 429 at once (with
      ``Retry-After: retry_after`` if given);
    - ``script``: the statuses answered to the successive attempts of each request (requests told apart by their
      body), e.g. ``[429, 429, 429, 500]``; then 200;
    - ``down``: while True every request is answered 500 (an endpoint that keeps failing).
    ``keep_bodies``: ``bodies`` holds every request body.
    ``statuses`` counts the answers by status, ``times`` holds (perf_counter, status) of each answer."""

    def __init__(self, content: str, delay_s: float, usage: tuple[int, int] = (1, 1), *, capacity: int | None = None,
                 retry_after: str | None = None, script: list[int] | None = None, keep_bodies: bool = False):
        self.count = self.in_flight = self.max_in_flight = 0
        self.first = self.last = None
        self.capacity, self.retry_after, self.script = capacity, retry_after, list(script or [])
        self.down = False
        self.statuses: dict[int, int] = {}
        self.times: list[tuple[float, int]] = []
        self.attempts: dict[str, int] = {}
        self.bodies: list[bytes] | None = [] if keep_bodies else None  # every request body, with keep_bodies
        lock = threading.Lock()
        srv = self
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                     "total_tokens": sum(usage)}}).encode()
        refusal = json.dumps({"error": {"message": "slow down", "type": "rate_limit", "code": 429}}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status: int, data: bytes, headers: dict | None = None) -> None:
                with lock:
                    srv.statuses[status] = srv.statuses.get(status, 0) + 1
                    srv.times.append((time.perf_counter(), status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                status = 200
                with lock:
                    srv.count += 1
                    if srv.bodies is not None:
                        srv.bodies.append(raw)
                    srv.first = srv.first or time.perf_counter()
                    if srv.down:
                        status = 500
                    elif srv.script:
                        h = hashlib.sha1(raw).hexdigest()
                        n = srv.attempts.get(h, 0)
                        srv.attempts[h] = n + 1
                        if n < len(srv.script):
                            status = srv.script[n]
                    if status == 200 and srv.capacity is not None and srv.in_flight >= srv.capacity:
                        status = 429
                    if status == 200:
                        srv.in_flight += 1
                        srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                if status != 200:
                    headers = {"Retry-After": srv.retry_after} if status == 429 and srv.retry_after else None
                    self.answer(status, refusal if status == 429 else b'{"error": {"message": "failed"}}', headers)
                    return
                time.sleep(delay_s)
                with lock:
                    srv.in_flight -= 1
                    srv.last = time.perf_counter()
                self.answer(200, body)

        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer.request_queue_size = 256
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SlowChatServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


if __name__ == "__main__":  # a server in a process of its own, so that its CPU is not the client's
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--delay", type=float, default=0.3)
    ap.add_argument("--capacity", type=int)
    ap.add_argument("--script", default="", help="comma-separated statuses for the attempts of each request")
    args = ap.parse_args()
    server = SlowChatServer("A", args.delay, capacity=args.capacity,
                            script=[int(s) for s in args.script.split(",") if s])
    print(server.url, flush=True)
    for line in sys.stdin:  # "stats" prints the counts; end of input stops the server
        if line.strip() == "stats":
            print(json.dumps({"count": server.count, "max_in_flight": server.max_in_flight,
                              "statuses": server.statuses}), flush=True)
    server.shutdown()
