"""Merging question folders: the folders of ``generate --shard K/N`` (same N, each K once) into the folder the
unsharded ``generate`` writes, byte for byte when every shard is given.

The shards must have been made with the same seed, tasks and task parameters (their ``generation_report.json``
says so). Each ``<task_id>.jsonl`` is rebuilt in the unsharded order: videos in id order (what generation runs
through), each video's questions in its shard's order. The report's counts (questions, skips by reason, answer
letters) are the sums of the shards'; a merge of only some of the N shards says which in ``"shards"``.
"""
from __future__ import annotations

import json
from pathlib import Path

from streamgaze.errors import InputError
from streamgaze.merge import staged_output
from streamgaze.paths import check_outputs
from streamgaze.shards import Shard
from streamgaze.tasks.blind import blind_accuracies
from streamgaze.tasks.generate import REPORT_FILE, output_names


def _report(folder: Path) -> dict:
    path = folder / REPORT_FILE
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the generation report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("tasks"), dict):
        raise InputError(path, "not a generation report (no tasks)")
    return report


def _shard(folder: Path, report: dict) -> Shard:
    text = report.get("shard")
    if text is None:
        raise InputError(folder / REPORT_FILE, "not a shard's question folder (made without --shard); merge joins "
                                               "the folders of generate --shard K/N")
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise InputError(folder / REPORT_FILE, f"shard: {exc}") from None


def _settings(report: dict) -> dict:
    return {"seed": report.get("seed"),
            "tasks": {t: {k: v for k, v in entry.items() if k not in COUNTS} for t, entry in report["tasks"].items()}}


COUNTS = ("questions", "skipped", "answer_letters", "blind_baselines")  # per shard; summed or recomputed


def _lines_by_video(path: Path, shard: Shard) -> dict[str, list[str]]:
    """The file's question lines grouped by video (each group in file order); every video in ``shard``."""
    out: dict[str, list[str]] = {}
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the question file ({exc})") from None
    for row, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            video = json.loads(line)["video_id"]
        except (ValueError, KeyError, TypeError):
            raise InputError(path, "not a question line (JSON with a video_id)", row=row) from None
        if not shard.holds(video):
            raise InputError(path, f"video {video!r} is not in shard {shard}", row=row)
        out.setdefault(video, []).append(line)
    return out


def merge_question_folders(inputs: list[Path], out: Path) -> str:
    reports = [_report(p) for p in inputs]
    shards = [_shard(p, r) for p, r in zip(inputs, reports)]
    order = sorted(range(len(inputs)), key=lambda i: shards[i].index)
    inputs, reports, shards = [inputs[i] for i in order], [reports[i] for i in order], [shards[i] for i in order]
    first = inputs[0]
    for p, r, s in zip(inputs[1:], reports[1:], shards[1:]):
        if s.count != shards[0].count:
            raise InputError(p, f"shard {s} is not of the same split as {first}'s shard {shards[0]}")
        if _settings(r) != _settings(reports[0]):
            raise InputError(p / REPORT_FILE, f"made with other settings (seed, tasks or task parameters) than {first}")
    indexes = [s.index for s in shards]
    if len(set(indexes)) < len(indexes):
        twice = next(s for s in shards if indexes.count(s.index) > 1)
        raise InputError(inputs[indexes.index(twice.index, indexes.index(twice.index) + 1)], f"shard {twice} is given twice")
    task_ids = list(reports[0]["tasks"])
    names = output_names(task_ids)
    check_outputs(out, names)
    files: dict[str, str] = {}
    merged_lines: dict[str, list[str]] = {}
    total = 0
    for task_id, name in zip(task_ids, names[:-1]):
        videos: dict[str, list[str]] = {}
        for p, s in zip(inputs, shards):
            path = p / name
            if not path.is_file():
                raise InputError(path, "question file missing from the shard's folder")
            videos.update(_lines_by_video(path, s))  # shards hold disjoint videos
        lines = [line for video in sorted(videos) for line in videos[video]]
        merged_lines[task_id] = lines
        total += len(lines)
        files[name] = "".join(line + "\n" for line in lines)
    report = {k: v for k, v in reports[0].items() if k not in ("shard", "tasks")}
    if len(shards) < shards[0].count:
        report["shards"] = [str(s) for s in shards]
    report["tasks"] = {}
    for task_id in task_ids:
        entry = dict(reports[0]["tasks"][task_id])
        entry["questions"] = sum(int(r["tasks"][task_id].get("questions", 0)) for r in reports)
        for key in ("skipped", "answer_letters"):
            summed: dict[str, int] = {}
            for r in reports:
                for k, n in (r["tasks"][task_id].get(key) or {}).items():
                    summed[k] = summed.get(k, 0) + int(n)
            entry[key] = dict(sorted(summed.items()))
        if "blind_baselines" in entry:  # leave-one-video-out over every video: recomputed, not summed
            entry["blind_baselines"] = blind_accuracies([json.loads(line) for line in merged_lines[task_id]])
        report["tasks"][task_id] = entry
    files[REPORT_FILE] = json.dumps(report, indent=2) + "\n"
    with staged_output(out, folder=True) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    missing = "" if len(shards) == shards[0].count else f" (shards {', '.join(map(str, shards))} of {shards[0].count})"
    return f"{out}: merged {len(inputs)} question folders{missing}: {total} questions in {len(task_ids)} task files"
