"""Batch inference files in the OpenAI Batch format, shared by ``eval`` and the ``openai`` object labeller.

A request file holds one JSON line per request: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}``, the shape OpenAI's and Azure's Batch APIs and vLLM's offline ``run_batch`` read. A result file holds one
line per answered request: ``{"custom_id", "response": {"status_code", "body"}, "error"}``.

Every custom_id is ``<kind>:<settings digest>:<key>``: the digest (12 hex) names the model and the settings that
shape the request, the key names the request inside the run (a question and test point, or the sha256 of an
objects request). A result whose digest is not this run's is "for another model or settings"; a result whose key
is not one of this run's requests "matches no request". Both are bad input, checked before anything is written.

`BatchSession` is what the callers use: in ``write`` mode `add` streams requests into files (`RequestWriter`,
split at 50,000 requests or 190 MB) and frames go inline or as JPEG files (`ImageSink`); in ``read`` mode `take`
hands out the parsed results (`read_results`). `submit_and_read` drives a provider's Files and Batches API with the
openai client and keeps the ids in ``batches.json`` so that a rerun after a crash polls the same batches.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from streamgaze.errors import ExternalCallsFailed, InputError, StreamGazeError
from streamgaze.llm.client import image_part, redact
from streamgaze.progress import stage

CHAT_URL = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # OpenAI's limit per batch file
MAX_BYTES = 190 * 1024 * 1024  # under OpenAI's 200 MB per file
MANIFEST = "manifest.json"
STATE = "batches.json"
IMAGE_MODES = ("inline", "file")
FINAL = ("completed", "failed", "expired", "cancelled")
UNANSWERED = "not answered in the batch results"
LISTED = 5  # unanswered custom_ids named in a summary line


def settings_digest(settings: dict) -> str:
    """12 hex of the sha256 of the settings that shape a request (model included): part of every custom_id."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def custom_id(kind: str, digest: str, key: str) -> str:
    return f"{kind}:{digest}:{key}"


def split_custom_id(cid: str) -> tuple[str, str, str] | None:
    parts = cid.split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


# -- writing -----------------------------------------------------------------------------------------------------

class ImageSink:
    """How a JPEG frame goes into a request: ``inline`` as a base64 data URL (what a provider's Batch API needs),
    or ``file``: written once (named by its sha256) under ``folder/images/`` and referred to by a ``file://`` URL,
    for vLLM started with ``--allowed-local-media-path`` on a filesystem every node sees."""

    def __init__(self, mode: str = "inline", folder: Path | None = None):
        if mode not in IMAGE_MODES:
            raise StreamGazeError(f"unknown batch image mode {mode!r}; choose one of {', '.join(IMAGE_MODES)}")
        self.mode = mode
        self.root = (Path(folder) / "images").resolve() if folder is not None else None
        self.written = self.reused = self.bytes = 0
        self._seen: set[str] = set()

    def part(self, jpeg: bytes) -> dict:
        if self.mode == "inline":
            return image_part(jpeg)
        digest = hashlib.sha256(jpeg).hexdigest()
        path = self.root / digest[:2] / f"{digest}.jpg"
        if digest in self._seen or path.exists():
            self.reused += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(jpeg)
            os.replace(tmp, path)
            self.written += 1
            self.bytes += len(jpeg)
        self._seen.add(digest)
        return {"type": "image_url", "image_url": {"url": path.as_uri()}}

    def localize(self, body: dict) -> dict:
        """``body`` with each inline JPEG (a base64 ``data:`` URL, as the online path builds it) made a part by
        `part`: the same body in ``inline`` mode, file URLs in ``file`` mode."""
        if self.mode == "inline":
            return body
        messages = []
        for msg in body.get("messages", []):
            content = msg.get("content")
            if isinstance(content, list):
                content = [self.part(decode_data_url(p["image_url"]["url"]))
                           if p.get("type") == "image_url" and str(p["image_url"].get("url", "")).startswith("data:")
                           else p for p in content]
                msg = {**msg, "content": content}
            messages.append(msg)
        return {**body, "messages": messages}


class RequestWriter:
    """Streams request lines into ``folder/requests-0001.jsonl``, ``-0002`` ... starting a new file before one
    would pass ``max_requests`` lines or ``max_bytes`` bytes. Files are written beside and renamed when full."""

    def __init__(self, folder: Path, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES):
        self.folder = Path(folder)
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.files: list[Path] = []
        self.requests = self.bytes = 0
        self._fh = None
        self._n = self._size = 0

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"requests-{len(self.files) + 1:04d}.jsonl"
        self.files.append(path)
        self._fh = open(path.with_name(path.name + ".part"), "wb")
        self._n = self._size = 0

    def _seal(self) -> None:
        if self._fh is not None:
            self._fh.close()
            path = self.files[-1]
            os.replace(path.with_name(path.name + ".part"), path)
            self._fh = None

    def add(self, cid: str, body: dict) -> None:
        line = (json.dumps({"custom_id": cid, "method": "POST", "url": CHAT_URL, "body": body},
                           ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        if len(line) > self.max_bytes:
            raise StreamGazeError(f"request {cid} is {len(line)} bytes, more than a batch file may hold")
        if self._fh is None or self._n + 1 > self.max_requests or self._size + len(line) > self.max_bytes:
            self._seal()
            self._open()
        self._fh.write(line)
        self._n += 1
        self._size += len(line)
        self.requests += 1
        self.bytes += len(line)

    def close(self) -> list[Path]:
        self._seal()
        return list(self.files)


# -- reading -----------------------------------------------------------------------------------------------------

@dataclass
class BatchResult:
    """One result line: the reply ``text`` (None when the request failed: ``error`` says why)."""

    custom_id: str
    path: Path
    row: int
    text: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


def _result(path: Path, row: int, obj) -> BatchResult:
    if not isinstance(obj, dict):
        raise InputError(path, f"a result line must be a JSON object, not {type(obj).__name__}", row=row)
    cid = obj.get("custom_id")
    if not isinstance(cid, str) or not cid:
        raise InputError(path, "a result line needs a custom_id string", row=row)
    res = BatchResult(cid, path, row)
    resp, err = obj.get("response"), obj.get("error")
    if resp is None:
        if not err:
            raise InputError(path, f"result {cid!r} has neither a response nor an error", row=row)
        res.error = str(err.get("message") or err.get("code") or err) if isinstance(err, dict) else str(err)
        return res
    if not isinstance(resp, dict) or not isinstance(resp.get("status_code"), int) or not isinstance(resp.get("body"), dict):
        raise InputError(path, f"result {cid!r}: response must hold an integer status_code and a body object", row=row)
    body = resp["body"]
    if resp["status_code"] != 200:
        e = body.get("error")
        msg = (e.get("message") if isinstance(e, dict) else e) or "no message"
        res.error = f"HTTP {resp['status_code']}: {msg}"
        return res
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise InputError(path, f"result {cid!r}: the response body is not a chat completion (no choices)", row=row)
    message = (choices[0] or {}).get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    res.text = content if isinstance(content, str) else ""
    res.model = body.get("model") if isinstance(body.get("model"), str) else None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    res.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    res.completion_tokens = int(usage.get("completion_tokens") or 0)
    return res


def read_results(paths) -> dict[str, BatchResult]:
    """Every result of the files, by custom_id; an answer wins over an error for the same id (a provider's output
    and error files), else the first line wins. A file that is not JSON lines of results is an `InputError`."""
    out: dict[str, BatchResult] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(path, "no such batch result file")
        with open(path, "rb") as fh:
            for row, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError as exc:
                    raise InputError(path, f"not a JSON lines result file ({exc})", row=row) from None
                res = _result(path, row, obj)
                old = out.get(res.custom_id)
                if old is None or (old.error is not None and res.error is None):
                    out[res.custom_id] = res
    return out


# -- the session -------------------------------------------------------------------------------------------------

@dataclass
class BatchSession:
    """One pass of a caller over its requests in batch mode.

    ``write``: `add` writes each request to ``folder`` (and its frames through ``images``) and records it in the
    manifest. ``read``: `expect` marks a request as one of this run's (also when it is already answered), `take`
    returns its result or None (then it is listed as unanswered); `check` refuses results that match nothing."""

    kind: str
    mode: str  # "write" | "read"
    folder: Path | None = None
    images: str = "inline"
    results: dict[str, BatchResult] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # recorded in the manifest
    unanswered: list[str] = field(default_factory=list)
    taken: int = 0
    failed: list[BatchResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._expected: set[str] = set()
        self._digests: set[str] = set()
        self._entries: list[dict] = []
        self._added: set[str] = set()
        self._missing: set[str] = set()
        self.writer = RequestWriter(self.folder) if self.mode == "write" else None
        self.sink = ImageSink(self.images, self.folder) if self.mode == "write" else None

    @classmethod
    def for_read(cls, kind: str, paths) -> "BatchSession":
        return cls(kind, "read", results=read_results(paths))

    def expect(self, digest: str, key: str) -> str:
        cid = custom_id(self.kind, digest, key)
        self._expected.add(cid)
        self._digests.add(digest)
        return cid

    def add(self, digest: str, key: str, body: dict, **about) -> None:
        """Write one request: ``body`` as the online path sends it (frames inline; made files by `ImageSink`)."""
        cid = self.expect(digest, key)
        if cid in self._added:  # the same request twice (identical frames): one line
            return
        self._added.add(cid)
        self.writer.add(cid, self.sink.localize(body))
        self._entries.append({"custom_id": cid, **about})

    def take(self, digest: str, key: str) -> BatchResult | None:
        cid = self.expect(digest, key)
        res = self.results.get(cid)
        if res is None:
            if cid not in self._missing:
                self._missing.add(cid)
                self.unanswered.append(cid)
        elif res.error is not None:
            self.failed.append(res)
        else:
            self.taken += 1
        return res

    def check(self) -> None:
        """The first result that is not one of this run's requests, as an `InputError` (one line)."""
        for cid, res in sorted(self.results.items(), key=lambda kv: (str(kv[1].path), kv[1].row)):
            if cid in self._expected:
                continue
            parts = split_custom_id(cid)
            if parts is not None and parts[0] == self.kind and parts[1] not in self._digests and self._digests:
                raise InputError(res.path, f"result {cid!r} is for another model or settings (settings "
                                           f"{parts[1]}, this run {', '.join(sorted(self._digests))})", row=res.row)
            raise InputError(res.path, f"custom_id {cid!r} matches no request of this run", row=res.row)

    def close(self) -> list[Path]:
        """Write mode: seal the request files and write the manifest; the files written."""
        files = self.writer.close()
        if files:
            manifest = {"kind": self.kind, "settings": self.settings, "images": self.images,
                        "files": [f.name for f in files], "requests": self.writer.requests,
                        "bytes": self.writer.bytes, "custom_ids": self._entries}
            tmp = self.folder / (MANIFEST + ".tmp")
            tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, self.folder / MANIFEST)
        return files

    def unanswered_note(self) -> str:
        if not self.unanswered:
            return ""
        shown = ", ".join(self.unanswered[:LISTED]) + (" ..." if len(self.unanswered) > LISTED else "")
        return f"; {len(self.unanswered)} requests still unanswered ({shown})"


# -- submitting through a Files and Batches API ------------------------------------------------------------------

def _load_state(path: Path) -> dict:
    if not path.exists():
        return {"jobs": []}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("jobs"), list):
            raise ValueError("no jobs list")
        return state
    except ValueError as exc:
        raise InputError(path, f"unreadable batch state ({exc}); it holds the ids of submitted batches") from None


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Job:
    file: str  # the request file, relative to the state folder
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "new"  # new | uploaded | submitted | <provider status> | read | closed
    total: int = 0
    done: int = 0
    results: list[str] = field(default_factory=list)


def _download(client, file_id: str, dest: Path) -> None:
    data = client.files.content(file_id).content
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def submit_and_read(state_dir: Path, write: Callable[[Path], list[Path]], read: Callable[[list[Path]], str],
                    client, *, poll_s: float | None = None, what: str = "batch") -> str:
    """Write the requests (``write(folder)``), upload and submit each file, poll until every batch ends, download
    the output and error files and hand them to ``read``; the summary line of ``read``.

    ``state_dir/batches.json`` records each file id and batch id as soon as the provider gives it, so a rerun after
    a crash polls the batches still open (nothing is written or uploaded again). A batch that failed, expired or
    was cancelled is an `InputError` (its record is closed: the next run submits its requests again); results that
    do not read are an `InputError` too, and the next run reads the same downloaded files again."""
    poll_s = float(os.environ.get("STREAMGAZE_BATCH_POLL_S", "30")) if poll_s is None else poll_s
    state_dir = Path(state_dir)
    state_path = state_dir / STATE
    state = _load_state(state_path)
    jobs = [Job(**j) for j in state["jobs"]]
    open_jobs = [j for j in jobs if j.status not in ("read", "closed")]

    def save() -> None:
        state["jobs"] = [asdict(j) for j in jobs]
        _save_state(state_path, state)

    if not open_jobs:
        round_dir = state_dir / f"round-{int(state.get('rounds', 0)) + 1:03d}"
        files = write(round_dir)
        if not files:
            return read([])
        state["rounds"] = int(state.get("rounds", 0)) + 1
        open_jobs = [Job(str(f.relative_to(state_dir))) for f in files]
        jobs += open_jobs
        save()
    try:
        for j in open_jobs:
            if j.status == "new":  # a crash during the upload: upload again (no batch was made from it)
                with open(state_dir / j.file, "rb") as fh:
                    j.file_id = client.files.create(file=fh, purpose="batch").id
                j.status = "uploaded"
                save()
            if j.status == "uploaded":
                b = client.batches.create(input_file_id=j.file_id, endpoint=CHAT_URL, completion_window="24h",
                                          metadata={"source": f"streamgaze {what}"})
                j.batch_id, j.status = b.id, "submitted"
                save()
        pending = [j for j in open_jobs if j.status not in FINAL]
        with stage(what, total=None) as advance:
            shown = 0
            while pending:
                for j in pending:
                    b = client.batches.retrieve(j.batch_id)
                    counts = getattr(b, "request_counts", None)
                    j.total = int(getattr(counts, "total", 0) or 0)
                    j.done = int(getattr(counts, "completed", 0) or 0) + int(getattr(counts, "failed", 0) or 0)
                    j.status = b.status
                    if b.status in FINAL:
                        for kind, fid in (("results", b.output_file_id), ("errors", b.error_file_id)):
                            if fid:
                                name = f"{kind}-{j.batch_id}.jsonl"
                                _download(client, fid, (state_dir / j.file).parent / name)
                                j.results.append(str(((state_dir / j.file).parent / name).relative_to(state_dir)))
                        if b.status != "completed":
                            errors = getattr(getattr(b, "errors", None), "data", None) or []
                            why = "; ".join(str(getattr(e, "message", e)) for e in errors[:2])
                            j.status = "closed"
                            save()
                            raise InputError(f"batch {j.batch_id}", f"{b.status} on the provider side"
                                             f"{f' ({why})' if why else ''}; nothing of it was read, the next run "
                                             "submits its requests again")
                    save()
                done = sum(j.done for j in open_jobs)
                advance(done - shown, total=sum(j.total for j in open_jobs) or None)
                shown = done
                pending = [j for j in pending if j.status not in FINAL]
                if pending:
                    time.sleep(poll_s)
    except InputError:
        raise
    except Exception as exc:  # an API call failed: the ids so far are kept, a rerun resumes
        raise ExternalCallsFailed(f"{what}: {redact(f'{type(exc).__name__}: {exc}').splitlines()[0][:300]}; "
                              f"the batch ids are kept in {state_path}, run the same command again to resume") from None
    result_files = [state_dir / r for j in open_jobs for r in j.results]
    try:
        summary = read(result_files)
    except ExternalCallsFailed:  # read, with some results errors: the next run submits those again
        for j in open_jobs:
            j.status = "read"
        save()
        raise
    for j in open_jobs:
        j.status = "read"
    save()
    ids = ", ".join(j.batch_id for j in open_jobs if j.batch_id)
    return f"{summary}; batches {ids}"


def make_sync_client(api_key: str, base_url: str | None, timeout_s: float = 120.0):
    """A blocking ``OpenAI`` client for the Files and Batches calls (few and slow: no need for async)."""
    from openai import OpenAI

    return OpenAI(api_key=api_key, base_url=base_url, max_retries=3, timeout=timeout_s)


def decode_data_url(url: str) -> bytes:
    """The bytes of a base64 ``data:`` URL (tests and tools that read request files)."""
    return base64.b64decode(url.split(",", 1)[1])
