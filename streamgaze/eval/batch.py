"""``streamgaze eval`` through Batch files (`streamgaze.llm.batch`): write the requests, read the results, or
submit them through the endpoint's Files and Batches API.

The requests are built by the runner's `build_request` and the model's ``request_body`` (the same bodies the online
run sends); the results become predictions rows through the runner's `answer_row` (the same parsing and judging).
A custom_id is ``eval:<settings>:<question id>:<point index>``, where ``<settings>`` is the first 12 hex digits of
the run's settings hash (`streamgaze.eval.samples.settings_hash`: model, prompts, frames, decoding, question files):
results of another run are refused before anything is written. Reading the same results twice adds nothing (an answered item is not asked again).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from streamgaze.errors import ExternalCallsFailed, StreamGazeError
from streamgaze.eval.runner import EvalOutcome, Item, answer_row, build_request, evaluate
from streamgaze.eval.samples import SETTINGS_KEYS, settings_hash
from streamgaze.llm.batch import BatchSession, make_sync_client, submit_and_read
from streamgaze.llm.client import resolve_api_key

KIND = "eval"
CHUNK = 32  # requests whose frames are decoded together (bounded memory)


def item_key(it: Item) -> str:
    return f"{it.q['id']}:{it.point_idx}"


@dataclass
class EvalBatch:
    """The runner's batch hook: `prepare` before the run folder is touched, `run` instead of asking."""

    session: BatchSession
    digest: str = ""
    config: object = None
    model: object = None
    written: list[Path] = field(default_factory=list)

    @property
    def writes_run(self) -> bool:
        """Writing Batch files leaves the run folder (and the store) as they are; reading results fills them."""
        return self.session.mode != "write"

    def prepare(self, config, items, model, run_info: dict) -> None:
        if config.streaming:
            raise StreamGazeError("the streaming metric polls one answer after another: it cannot run from Batch files")
        if not hasattr(model, "request_body"):
            raise StreamGazeError(f"model {config.model!r} sends no chat requests: Batch files are for openai: and "
                                  "text-only: models")
        # the run's settings hash (`samples.settings_hash`: model, prompts, frames, decoding, question files)
        self.digest, self.config, self.model = settings_hash(run_info)[:12], config, model
        self.session.settings = {k: run_info[k] for k in SETTINGS_KEYS if k in run_info}
        if self.session.mode == "read":
            for it in items:
                self.session.expect(self.digest, item_key(it))
            self.session.check()

    def run(self, todo: list[Item], videos: dict, pred_path: Path, counts: dict) -> None:
        c, m, s = self.config, self.model, self.session
        if s.mode == "write":
            with ThreadPoolExecutor(max_workers=4) as pool:
                for start in range(0, len(todo), CHUNK):
                    chunk = todo[start:start + CHUNK]
                    reqs = pool.map(lambda it: build_request(it, m, c.gaze_prompt, c.frames, videos.get(it.q["id"]),
                                                             c.prompt_style, c.protocol), chunk)
                    for it, req in zip(chunk, reqs):
                        s.add(self.digest, item_key(it), m.request_body(req),
                              question_id=it.q["id"], point_idx=it.point_idx, frames=req.frame_times)
            self.written = s.close()
            return
        with open(pred_path, "a", encoding="utf-8") as fh:
            for it in todo:
                res = s.take(self.digest, item_key(it))
                if res is None or res.error is not None:
                    continue  # unanswered (listed), or failed in the batch (counted): asked by a later batch
                # the request as sent, without its images: clip, frame times and gaze shown, for the row
                req = build_request(it, m, c.gaze_prompt, c.frames, videos.get(it.q["id"]), c.prompt_style,
                                    c.protocol, decode=False)
                row = answer_row(it, req, res.text, None, 0.0, c.model, c.gaze_prompt)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1

    def summary(self, already: int) -> str:
        s = self.session
        if s.mode == "write":
            w = s.writer
            images = (f", {s.sink.written} frames written as JPEG files ({s.sink.reused} reused)"
                      if s.images == "file" else "")
            return (f"wrote {w.requests} requests ({w.bytes / 1e6:.1f} MB) in {len(self.written)} file(s) to "
                    f"{s.folder}{images}; nothing sent, {already} already answered")
        failed = f", {len(s.failed)} failed in the batch" if s.failed else ""
        return f"read {s.taken} answers{failed}, {already} already answered{s.unanswered_note()}"

    def outcome(self, summary: str) -> EvalOutcome:
        failed = self.session.failed
        return BatchOutcome(summary, asked=self.session.taken + len(failed), failed=len(failed),
                            last_error=failed[-1].error if failed else None)


class BatchOutcome(EvalOutcome):
    def failure(self) -> ExternalCallsFailed | None:
        """Results that failed at the provider: exit code 1; they are written again by the next batch."""
        if not self.failed:
            return None
        return ExternalCallsFailed(f"{self.failed} of {self.asked} batch results are errors (last: {self.last_error}); "
                                   "the next --batch-write or --batch asks them again")


def evaluate_batch(qa_dir, config, *, write_dir: Path | None = None, read_files=(), submit: bool = False,
                   images: str = "inline") -> EvalOutcome:
    """`evaluate` through Batch files: ``write_dir`` writes the requests there, ``read_files`` reads results,
    ``submit`` does both through the endpoint's Files and Batches API (ids kept in ``<run>/batch/batches.json``)."""
    if sum(bool(x) for x in (write_dir, read_files, submit)) != 1:
        raise StreamGazeError("give one of --batch-write DIR, --batch-read FILE, --batch")
    if images != "inline" and write_dir is None:
        raise StreamGazeError("--batch-images file goes with --batch-write (a provider's Batch API cannot read "
                              "local files)")
    if write_dir is not None:
        return evaluate(qa_dir, config, EvalBatch(BatchSession(KIND, "write", folder=Path(write_dir), images=images)))
    if read_files:
        return evaluate(qa_dir, config, EvalBatch(BatchSession.for_read(KIND, read_files)))
    client = make_sync_client(resolve_api_key(None, config.base_url, "--batch"), config.base_url)
    box: dict = {}

    def write(folder: Path) -> list[Path]:
        batch = EvalBatch(BatchSession(KIND, "write", folder=folder))
        evaluate(qa_dir, config, batch)
        return batch.written

    def read(paths: list[Path]) -> str:
        box["outcome"] = evaluate(qa_dir, config, EvalBatch(BatchSession.for_read(KIND, paths)))
        return box["outcome"].summary

    summary = submit_and_read(Path(config.out_dir) / "batch", write, read, client, what="eval batch")
    out = box["outcome"]
    out.summary = summary
    return out
