"""Merging eval run folders: the shards of one evaluation (``eval --shard K/N``) into one run folder that scores
as the unsharded run.

Refused (one line, nothing written): runs of different settings (`SETTINGS`: model, gaze mode, prompt style and
its flag, protocol and decoding, frames policy, FOV radius, seed, streaming settings, streamgaze version), of different question sets (the
question files' sha256 in run.json), shards of different splits, a shard given twice, sharded and unsharded runs
mixed, and runs that answered the same item (a question or test point; a streaming question). The merged
``predictions.jsonl`` (and ``stream.jsonl``) holds every complete line of the inputs, shard by shard;
``run.json`` is the first shard's without its shard and last-run counts, plus ``merged_from`` (each input's
folder, shard, endpoint and last run).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from streamgaze.errors import InputError
from streamgaze.eval.runner import PREDICTIONS, RUN, RUN_SETTINGS, STREAM
from streamgaze.eval.score import question_dir
from streamgaze.merge import staged_output
from streamgaze.shards import Shard

SETTINGS = RUN_SETTINGS  # run.json fields that must be equal in every merged run
#: run.json fields of one run's history, not of the merged run
PER_RUN = ("shard", "last_run", "last_stream_run", "endpoint", "started")


def _info(run: Path) -> dict:
    try:
        info = json.loads((run / RUN).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(run / RUN, f"cannot read run.json ({exc})") from None
    if not isinstance(info, dict):
        raise InputError(run / RUN, "not a run.json object")
    return info


def _complete_lines(path: Path) -> list[bytes]:
    """The file's complete lines (a truncated last line, left by a killed run, is dropped)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [line for line in data[: data.rfind(b"\n") + 1].split(b"\n") if line.strip()]


def _items(lines: list[bytes], path: Path, streaming: bool) -> set:
    keys = set()
    for line in lines:
        try:
            row = json.loads(line)
            keys.add(row["question_id"] if streaming else (row["question_id"], int(row.get("point_idx", -1))))
        except (ValueError, KeyError, TypeError):
            continue  # not a prediction row: the runner and the scorer skip it too
    return keys


def merge_runs(inputs: list[Path], out: Path) -> str:
    infos = [_info(p) for p in inputs]
    shards: list[Shard | None] = []
    for p, info in zip(inputs, infos):
        try:
            shards.append(Shard.parse(info["shard"]) if info.get("shard") is not None else None)
        except ValueError as exc:
            raise InputError(p / RUN, f"shard: {exc}") from None
    if any(s is not None for s in shards):
        plain = next((p for p, s in zip(inputs, shards) if s is None), None)
        if plain is not None:
            raise InputError(plain, "is not a shard's run, the others are; merge the runs of one eval --shard split")
        order = sorted(range(len(inputs)), key=lambda i: shards[i].index)
        inputs, infos, shards = [inputs[i] for i in order], [infos[i] for i in order], [shards[i] for i in order]
    first, base = inputs[0], infos[0]
    for j, (p, info, s) in enumerate(zip(inputs, infos, shards)):
        if j == 0:
            continue
        for key in SETTINGS:
            if info.get(key) != base.get(key):
                raise InputError(p, f"run of other settings than {first}: {key} {info.get(key)!r}, not {base.get(key)!r}")
        if info.get("question_files") != base.get("question_files"):
            raise InputError(p, f"run of other questions than {first} (its question files differ); merge the runs "
                                "of one question set")
        if s is not None and s.count != shards[0].count:
            raise InputError(p, f"shard {s} is not of the same split as {first}'s shard {shards[0]}")
        if s is not None and s == shards[j - 1]:  # sorted by index: a repeat is next to its twin
            raise InputError(p, f"shard {s} is given twice")
    files = {}
    for name, streaming in ((PREDICTIONS, False), (STREAM, True)):
        owner: dict = {}
        merged: list[bytes] = []
        for p in inputs:
            lines = _complete_lines(p / name)
            for key in _items(lines, p / name, streaming):
                if key in owner:
                    shown = key if streaming else f"{key[0]} (point {key[1]})"
                    raise InputError(p / name, f"item {shown} is answered in {owner[key]} too; merge runs of "
                                               "disjoint questions (the shards of one run)")
                owner[key] = p
            merged += lines
        if merged or any((p / name).exists() for p in inputs):
            files[name] = b"".join(line + b"\n" for line in merged)
    qa_dir = question_dir(first)
    info = {k: v for k, v in base.items() if k not in PER_RUN}
    starts = [i.get("started") for i in infos if i.get("started")]
    info["started"] = min(starts) if starts else None
    info["qa_dir"] = str(qa_dir.resolve())
    info["qa_dir_relative"] = os.path.relpath(qa_dir.resolve(), out.absolute().resolve() if out.exists() else _resolved(out))
    if shards[0] is not None and len(shards) < shards[0].count:
        info["shards"] = [str(s) for s in shards]
    info["merged_from"] = [{"run": str(p.resolve()), "shard": i.get("shard"), "endpoint": i.get("endpoint"),
                            "last_run": i.get("last_run")} for p, i in zip(inputs, infos)]
    with staged_output(out, folder=True) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / RUN).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    rows = sum(data.count(b"\n") for data in files.values())
    return f"{out}: merged {len(inputs)} run folders ({rows} prediction rows)"


def _resolved(path: Path) -> str:
    """``path`` made absolute with its existing parents' links resolved (it does not exist yet)."""
    parent = path.absolute().parent
    return str(Path(os.path.realpath(parent)) / path.name)
