"""Throughput of the eval runner against a loopback OpenAI-compatible server that answers after 300 ms:
questions per second at 32 requests in flight versus 1. Run: python bench/bench_eval.py [n_questions]."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

import openai  # noqa: E402,F401  (import cost out of the timing)

from streamgaze.eval.runner import run_eval  # noqa: E402

DELAY_S = 0.3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(DELAY_S)
        data = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "A"}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(n: int = 64) -> None:
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    with tempfile.TemporaryDirectory() as d:
        qa = Path(d) / "qa"
        qa.mkdir()
        rows = [json.dumps({"id": f"q{i}", "task": "past_scene_recall", "family": "past", "video_id": "v",
                            "question": f"question {i}?", "options": ["a", "b", "c", "d"], "answer": "A",
                            "answer_text": "a", "time_s": 1.0, "clip": [0.0, 1.0], "evidence": {}}) for i in range(n)]
        (qa / "past_scene_recall.jsonl").write_text("\n".join(rows) + "\n")
        rates = {}
        for conc, count in ((1, min(n, 16)), (32, n)):
            sub = qa.parent / f"qa{conc}"
            sub.mkdir()
            (sub / "past_scene_recall.jsonl").write_text("\n".join(rows[:count]) + "\n")
            t0 = time.perf_counter()
            run_eval(sub, "text-only:bench", Path(d) / f"R{conc}", base_url=base, concurrency=conc)
            dt = time.perf_counter() - t0
            rates[conc] = count / dt
            print(f"concurrency {conc:>2}: {count} questions in {dt:.2f} s = {rates[conc]:.2f} q/s")
        print(f"speed-up 32 vs 1: {rates[32] / rates[1]:.1f}x (ideal {min(32, n)}x at {DELAY_S * 1000:.0f} ms per reply)")
    httpd.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
