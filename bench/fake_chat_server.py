"""A local chat-completions server that answers every request with one fixed reply after a fixed delay, for the
benchmarks of concurrent model calls (bench_eval.py, bench_labeller.py): what they measure is how many requests
are in flight, so the server only counts them and waits."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowChatServer:
    """``url`` is the base URL to hand an OpenAI client; ``count``, ``max_in_flight``, ``first`` and ``last``
    (perf_counter of the first request and the last reply) say what reached it."""

    def __init__(self, content: str, delay_s: float, usage: tuple[int, int] = (1, 1)):
        self.count = self.in_flight = self.max_in_flight = 0
        self.first = self.last = None
        lock = threading.Lock()
        srv = self
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                     "total_tokens": sum(usage)}}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    srv.count += 1
                    srv.first = srv.first or time.perf_counter()
                    srv.in_flight += 1
                    srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                time.sleep(delay_s)
                with lock:
                    srv.in_flight -= 1
                    srv.last = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer.request_queue_size = 256
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def shutdown(self) -> None:
        self.httpd.shutdown()
