"""A loopback OpenAI-compatible server with the Files and Batches API, for the Batch tests.

- ``POST /v1/files`` (multipart, ``purpose=batch``) stores an upload; ``GET /v1/files/{id}/content`` returns it;
- ``POST /v1/batches`` makes a batch of an uploaded file; ``GET /v1/batches/{id}`` reports it. A worker thread
  answers the batch's requests one by one (``answer(body) -> text``, as ``/v1/chat/completions`` would; None: that
  request fails with HTTP 500 inside the batch) and then
  writes the output file; ``hold`` keeps batches in progress until it is set; ``end_as`` ends them ``failed`` or
  ``expired`` instead;
- ``POST /v1/chat/completions`` answers online with the same ``answer``, for comparisons.

``uploads``, ``created`` and ``retrieved`` record what reached it.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def completion(model: str, text: str, n: int = 0) -> dict:
    return {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def multipart_file(body: bytes, content_type: str) -> tuple[bytes, dict]:
    """The ``file`` part's bytes and the other fields of a multipart/form-data body."""
    boundary = re.search(r"boundary=\"?([^\";]+)", content_type).group(1).encode()
    data, fields = b"", {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, content = part.partition(b"\r\n\r\n")
        content = content[:-2] if content.endswith(b"\r\n") else content
        name = re.search(rb'name="([^"]+)"', head)
        if name is None:
            continue
        if name.group(1) == b"file":
            data = content
        else:
            fields[name.group(1).decode()] = content.decode()
    return data, fields


class BatchServer:
    def __init__(self, answer: Callable[[dict], str], *, delay_s: float = 0.0):
        self.answer = answer
        self.delay_s = delay_s
        self.hold = threading.Event()
        self.hold.set()
        self.end_as: str | None = None
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.uploads: list[str] = []
        self.created: list[str] = []
        self.retrieved: list[str] = []
        self.online = 0
        self.lock = threading.Lock()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status: int, obj=None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                m = re.fullmatch(r"/v1/files/([^/]+)/content", self.path)
                if m and m.group(1) in srv.files:
                    return self._send(200, raw=srv.files[m.group(1)])
                m = re.fullmatch(r"/v1/batches/([^/]+)", self.path)
                if m and m.group(1) in srv.batches:
                    with srv.lock:
                        srv.retrieved.append(m.group(1))
                        return self._send(200, dict(srv.batches[m.group(1)]))
                self._send(404, {"error": {"message": f"no {self.path}"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/files":
                    data, fields = multipart_file(body, self.headers["Content-Type"])
                    with srv.lock:
                        fid = f"file-{len(srv.files) + 1}"
                        srv.files[fid] = data
                        srv.uploads.append(fid)
                    return self._send(200, {"id": fid, "object": "file", "bytes": len(data), "created_at": 0,
                                            "filename": "requests.jsonl", "purpose": fields.get("purpose", ""),
                                            "status": "processed"})
                if self.path == "/v1/batches":
                    req = json.loads(body)
                    if req["input_file_id"] not in srv.files:
                        return self._send(404, {"error": {"message": "no such file"}})
                    with srv.lock:
                        bid = f"batch_{len(srv.batches) + 1}"
                        srv.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"],
                                            "input_file_id": req["input_file_id"],
                                            "completion_window": req["completion_window"], "status": "validating",
                                            "created_at": int(time.time()), "output_file_id": None,
                                            "error_file_id": None, "errors": None,
                                            "request_counts": {"total": 0, "completed": 0, "failed": 0}}
                        srv.created.append(bid)
                    threading.Thread(target=srv._work, args=(bid,), daemon=True).start()
                    return self._send(200, dict(srv.batches[bid]))
                if self.path == "/v1/chat/completions":
                    req = json.loads(body)
                    with srv.lock:
                        srv.online += 1
                    return self._send(200, completion(req["model"], srv.answer(req)))
                self._send(404, {"error": {"message": f"no {self.path}"}})

        ThreadingHTTPServer.daemon_threads = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _work(self, bid: str) -> None:
        with self.lock:
            batch = self.batches[bid]
            lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x.strip()]
            batch.update(status="in_progress", request_counts={"total": len(lines), "completed": 0, "failed": 0})
        self.hold.wait()
        out = []
        for i, line in enumerate(lines):
            time.sleep(self.delay_s)
            body = line["body"]
            text = self.answer(body)
            if text is None:  # ``answer`` gives None: this request fails inside the batch (HTTP 500)
                response = {"status_code": 500, "request_id": f"r{i}", "body": {"error": {"message": "overloaded"}}}
            else:
                response = {"status_code": 200, "request_id": f"r{i}", "body": completion(body["model"], text, i)}
            out.append({"id": f"batch_req_{i}", "custom_id": line["custom_id"], "response": response, "error": None})
            with self.lock:
                batch["request_counts"]["completed"] += 1
        with self.lock:
            if self.end_as:
                batch.update(status=self.end_as, errors={"object": "list", "data": [
                    {"code": self.end_as, "message": f"the batch {self.end_as}", "line": None, "param": None}]})
                return
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = "".join(json.dumps(x) + "\n" for x in out).encode()
            batch.update(status="completed", output_file_id=fid)

    def close(self) -> None:
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()
