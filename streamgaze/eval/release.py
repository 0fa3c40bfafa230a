"""Reading the released StreamGaze QA files (tasks.md 4.2): ``<task_id>.json``, a JSON array of
``{"response_time", "questions": [q, ...], "video_path", ...}`` items, turned into our question lines.

- ``task`` = the file stem when it is a registered task, else the registered task whose spec names the item's
  ``task_type`` (`streamgaze.tasks.spec.task_of_release_type`), else the stem;
- ``video_id`` = the stem of ``video_path`` (or ``video``, which the reference wrote for some tasks);
- ``time_s`` = the parsed ``time_stamp`` ("SS", "MM:SS" or "HH:MM:SS"; minutes may exceed 59);
- ``clip`` by the family policy: past [0, t], present [max(0, t - 60), t], proactive [0, t];
- ``options`` without their "A. " prefix; ``answer`` the letter;
- proactive: ``test_points`` from ``test_info`` (``realtime`` -> t_s, ``type`` 1 -> "yes"), ``evidence.target``
  from ``target_object`` and ``evidence.onset_s`` from ``first_appearance``;
- ``evidence.source`` = "streamgaze-release"; ``id`` = ``<stem>-<item>-<question>`` (stable for a given file).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from streamgaze.errors import InputError
from streamgaze.tasks.api import LETTERS
from streamgaze.tasks.spec import family_of, registered_spec, task_of_release_type

RELEASE_OPTIONS = 4  # every released multiple-choice question has options A-D
_PREFIX = re.compile(r"^\s*\(?([A-Ha-h])[.)]\s+")


def parse_time(value, *, where: str = "time") -> float:
    """"SS", "MM:SS", "HH:MM:SS" (fractions allowed) or a number -> seconds (finite, >= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{where} is not a time: {value!r}")
        return round(float(value), 3)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} is not a time: {value!r}")
    parts = value.strip().split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{where} is not a time: {value!r}") from None
    if len(nums) > 3 or not all(math.isfinite(n) and n >= 0 for n in nums):
        raise ValueError(f"{where} is not a time: {value!r}")
    total = 0.0
    for n in nums:
        total = total * 60 + n
    return round(total, 3)


def _json_kind(value) -> str:
    return {dict: "object", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def _clip(family: str, t: float) -> list[float]:
    if family == "present":
        return [round(max(0.0, t - 60.0), 3), t]
    return [0.0, t]


def load_release_file(path) -> list[dict]:
    """The questions of one released ``*.json`` file, as question dicts (see the module doc)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the question file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise InputError(path, f"a released QA file is a JSON array of items, not a JSON {_json_kind(data)}")
    stem = path.stem
    out: list[dict] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("questions"), list):
            raise InputError(path, f"item {i} has no questions list", row=i + 1)
        video = item.get("video_path") or item.get("video") or ""
        video_id = Path(str(video)).stem
        if not video_id:
            raise InputError(path, f"item {i} has no video_path", row=i + 1)
        for j, q in enumerate(item["questions"]):
            try:
                out.append(_question(stem, i, j, q, item, video_id))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(path, f"item {i} question {j}: {exc}", row=i + 1) from None
    return out


def _question(stem: str, i: int, j: int, q: dict, item: dict, video_id: str) -> dict:
    if registered_spec(stem) is not None:
        task = stem
    else:
        task = task_of_release_type(str(q.get("task_type", ""))) or stem
    family = family_of(task)
    t = parse_time(q.get("time_stamp", 0), where="time_stamp")
    base = {
        "id": f"{stem}-{i}-{j}",
        "task": task,
        "family": family,
        "video_id": video_id,
        "question": str(q["question"]),
        "time_s": t,
        "clip": _clip(family, t),
        "evidence": {"source": "streamgaze-release", "video_path": item.get("video_path") or item.get("video"),
                     "video_categories": item.get("video_categories")},
    }
    if q.get("test_info") is not None or family == "proactive":
        points = []
        for p in q.get("test_info") or []:
            points.append({"t_s": parse_time(p["realtime"], where="realtime"),
                           "expected": "yes" if int(p.get("type", 0)) == 1 else "no"})
        if not points:
            raise ValueError("a proactive question without test_info")
        ev = base["evidence"]
        ev["target"] = q.get("target_object") or ""
        if q.get("first_appearance") not in (None, ""):
            ev["onset_s"] = parse_time(q["first_appearance"], where="first_appearance")
        base.update(options=[], answer="", answer_text="", test_points=points)
        return base
    options = [_PREFIX.sub("", str(o), count=1) for o in q.get("options") or []]
    if not options:
        raise ValueError("a multiple-choice question without options")
    if len(options) != RELEASE_OPTIONS:
        raise ValueError(f"{len(options)} options; the released multiple-choice questions have {RELEASE_OPTIONS} (A-D)")
    answer = str(q.get("answer", "")).strip()
    m = re.match(r"^\(?([A-Ha-h])(?:$|[.):\s])", answer)
    if not m:
        raise ValueError(f"answer {answer!r} is not a letter")
    letter = m.group(1).upper()
    k = LETTERS.index(letter)
    if k >= len(options):
        raise ValueError(f"answer {letter} but only {len(options)} options")
    base.update(options=options, answer=letter, answer_text=options[k])
    return base


# -- the released folder layout -------------------------------------------------------------------------
ORIGINAL = "original_video"
GAZE_VIZ = "gaze_viz_video"


def find_benchmark(root) -> tuple[Path, Path]:
    """``(qa_dir, video_root)`` of a released StreamGaze folder: ``ROOT/dataset/qa`` or ``ROOT/qa``, and
    ``ROOT/dataset/videos`` or ``ROOT/videos``; an `InputError` naming ROOT when either is not there."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such benchmark folder (expected ROOT/dataset/qa and ROOT/dataset/videos)")
    found = []
    for name in ("qa", "videos"):
        for cand in (root / "dataset" / name, root / name):
            if cand.is_dir():
                found.append(cand)
                break
        else:
            raise InputError(root, f"no {name} folder in the benchmark (looked for dataset/{name} and {name})")
    return found[0], found[1]


def video_basename(q: dict) -> str:
    """The file name of a question's video: the basename of the released item's ``video_path`` (or ``video``),
    else ``<video_id>.mp4``."""
    ref = (q.get("evidence") or {}).get("video_path")
    if isinstance(ref, str) and ref.strip():
        return Path(ref.replace("\\", "/")).name
    return f"{q['video_id']}.mp4"


def find_video(q: dict, video_root) -> Path | None:
    """A question's original video as the reference harness finds it: the item's ``video_path`` when that file
    exists, else ``VIDEO_ROOT/original_video/<basename>``, else ``VIDEO_ROOT/<basename>``; None when none exists."""
    ref = (q.get("evidence") or {}).get("video_path")
    if isinstance(ref, str) and ref.strip() and Path(ref).is_file():
        return Path(ref)
    name = video_basename(q)
    for cand in (Path(video_root) / ORIGINAL / name, Path(video_root) / name):
        if cand.is_file():
            return cand
    return None


def gaze_viz_path(q: dict, video_root) -> Path:
    """Where the released video with the gaze drawn in is: ``VIDEO_ROOT/gaze_viz_video/<basename>``."""
    return Path(video_root) / GAZE_VIZ / video_basename(q)
