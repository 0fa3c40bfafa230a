"""``streamgaze export streamgaze-json``: question files in the released StreamGaze JSON shape (tasks.md 4.3).

One file per registered task (``task_type`` from its spec's ``release:``, else its id; ``required_ability`` its
``ability``), ``D/<task_id>.json``: a JSON array with one item per question,
``{"response_time": "[MM:SS - MM:SS]", "questions": [q], "video_categories": DATASET, "video_path": PATH}``.

- The item key is ``video_path`` for every task (the reference wrote ``video`` for some, which its own evaluator
  could not read). DATASET is ``videos.dataset`` in upper case; PATH is ``videos.path`` (else ``<video_id>.mp4``).
- Times are "MM:SS"; minutes do not wrap ("75:02"). ``time_stamp`` = ceil(time_s), so the decisive evidence stays
  inside the clip the reference evaluator builds from it; every other time is floored.
- ``response_time`` is the clip for MCQ items and [time_s, last test point] for proactive ones.
- Proactive ``test_info``: ``realtime`` is floor(t) and ``type`` is recomputed with our windowed rule at floor(t)
  (the reference evaluator shows [0, realtime]); the export reports how many points changed.
- Interval lists merge events at most 10 s apart, for display only, as the reference did.

Episode times (OTP, FAP) and video rows come from the store (default: ``QA/../store.duckdb``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.tasks.api import LETTERS
from streamgaze.tasks.spec import registered_spec, release_task_type

MERGE_GAP_S = 10.0
DEFAULT_POLL_S = 10.0


def mmss(seconds: float, *, ceil: bool = False) -> str:
    """Whole seconds as "MM:SS" (floored unless ``ceil``); minutes do not wrap into hours."""
    s = math.ceil(round(seconds, 3)) if ceil else math.floor(round(seconds, 3))
    s = max(0, int(s))
    return f"{s // 60:02d}:{s % 60:02d}"


def merge_intervals(intervals, gap: float = MERGE_GAP_S) -> list[list[float]]:
    merged: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in intervals):
        if merged and s - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def expected_at(t: float, events, window_s: float) -> int:
    """tasks.md 2.9: 1 iff some event [s, e] meets the window (t - W, t]: s <= t and e > t - W."""
    return int(any(s <= t and e > t - window_s for s, e in events))


class _StoreInfo:
    def __init__(self, store_path: Path | None):
        self.videos: dict[str, tuple[str, str]] = {}
        self.episodes: dict[tuple[str, str], tuple[float, float]] = {}
        if store_path is None:
            return
        from streamgaze.store import open_store

        with open_store(store_path, read_only=True) as store:
            for vid, dataset, path in store.con.execute("SELECT video_id, coalesce(dataset, ''), coalesce(path, '') FROM videos").fetchall():
                self.videos[vid] = (dataset, path)
            for vid, eid, t0, t1 in store.con.execute("SELECT video_id, episode_id, t_start, t_end FROM episodes").fetchall():
                self.episodes[(vid, eid)] = (float(t0), float(t1))
            rows = store.con.execute("SELECT video_id, episode_id, name FROM objects WHERE role = 'gazed'").fetchall()
        from streamgaze.tasks import names

        self.gazed: dict[tuple[str, str], set[str]] = {}
        for vid, eid, name in rows:
            self.gazed.setdefault((vid, eid), set()).add(names.key(name))

    def episode(self, video_id: str, episode_id: str, where: str) -> tuple[float, float]:
        try:
            return self.episodes[(video_id, episode_id)]
        except KeyError:
            raise StreamGazeError(f"{where}: episode {episode_id!r} of video {video_id!r} is not in the store") from None

    def video(self, video_id: str) -> tuple[str, str]:
        dataset, path = self.videos.get(video_id, ("", ""))
        return dataset.upper(), path or f"{video_id}.mp4"


def _mcq(q: dict, task_type: str, ability: str) -> dict:
    return {
        "task_type": task_type,
        "question": q["question"],
        "time_stamp": mmss(q["time_s"], ceil=True),
        "answer": q["answer"],
        "options": [f"{LETTERS[i]}. {o}" for i, o in enumerate(q["options"])],
        "required_ability": ability,
    }


def convert(q: dict, info: _StoreInfo, poll_s: float, where: str) -> tuple[dict, int]:
    """One question line -> (released item, number of test points whose type changed)."""
    task = q["task"]
    spec = registered_spec(task)
    task_type, ability = release_task_type(spec), spec.ability
    ev = q.get("evidence") or {}
    vid = q["video_id"]
    changed = 0
    if q["family"] == "proactive":
        events = [(float(s), float(e)) for s, e in ev.get("event_intervals", [])]
        test_info = []
        for p in q.get("test_points", []):
            t_floor = math.floor(round(p["t_s"], 3))
            kind = expected_at(t_floor, events, poll_s)
            changed += kind != (1 if p["expected"] == "yes" else 0)
            test_info.append({"realtime": mmss(t_floor), "type": kind})
        gta = task == "proactive_gaze_triggered_alert"
        qq = {
            "task_type": task_type,
            "question": q["question"],
            "time_stamp": mmss(q["time_s"], ceil=True),
            "first_appearance": mmss(ev.get("onset_s", events[0][0] if events else q["time_s"])),
            ("fixation_intervals" if gta else "appearance_intervals"): [
                {"start": mmss(s), "end": mmss(e)} for s, e in merge_intervals(events)
            ],
            "test_info": test_info,
            "difficulty": "easy" if gta else "hard",
            "gaze_area": "FOV" if gta else "Outside",
            "target_object": ev.get("target", ""),
            "required_ability": ability,
        }
        last = max([p["t_s"] for p in q.get("test_points", [])] or [q["time_s"]])
        response = f"[{mmss(q['time_s'])} - {mmss(last)}]"
    else:
        qq = _mcq(q, task_type, ability)
        if task == "past_non_fixated_object_identification":
            qq["answer_object"] = q["answer_text"]
        elif task == "past_object_transition_prediction":
            g0, g1 = info.episode(vid, ev["group_episode"], where)
            a0, _ = info.episode(vid, ev["answer_episode"], where)
            qq.update(object_group=list(ev["group"]), object_group_timestamp=f"({mmss(g0)}, {mmss(g1)})",
                      answer_object=q["answer_text"], answer_timestamp=mmss(a0))
        elif task == "past_gaze_sequence_matching":
            qq["correct_sequence"] = [list(g) for g in ev["correct_sequence"]]
        elif task == "past_scene_recall":
            qq.update(gazed_objects=list(ev["gazed_objects"]), answer_object=q["answer_text"],
                      background_objects=list(ev["background_objects"]))
        elif task in ("present_object_identification_easy", "present_object_identification_hard"):
            qq["object"] = ev["object"]
        elif task == "present_object_attribute_recognition":
            qq.update(attribute_type=ev["attribute"], object_name=ev["object"])
        elif task == "present_future_action_prediction":
            timing = []
            for o in ev["context_objects"]:  # each object at the first context episode that gazed it
                eid = next((e for e in ev["context_episodes"] if o in info.gazed.get((vid, e), ())), ev["context_episodes"][-1])
                timing.append({"object": o, "timestamp": mmss(info.episode(vid, eid, where)[0])})
            qq.update(answer_action=q["answer_text"], context_objects=list(ev["context_objects"]),
                      context_objects_with_timing=timing, actual_action_time=mmss(ev["action"]["t_start"]))
        response = f"[{mmss(q['clip'][0])} - {mmss(q['clip'][1])}]"
    dataset, path = info.video(vid)
    return {"response_time": response, "questions": [qq], "video_categories": dataset, "video_path": path}, changed


def _poll_s(qa_dir: Path, task_id: str) -> float:
    report = qa_dir / "generation_report.json"
    if report.is_file():
        try:
            params = json.loads(report.read_text(encoding="utf-8"))["tasks"][task_id]["params"]
            return float(params.get("proactive_poll_s", DEFAULT_POLL_S))
        except (KeyError, ValueError, TypeError):
            pass
    return DEFAULT_POLL_S


def export_streamgaze_json(qa_dir, out_dir, store=None) -> dict:
    """Write ``out_dir/<task_id>.json`` for every StreamGaze task file in ``qa_dir``.

    Returns ``{task_id: {"items": n, "changed_points": k}}``. Everything is converted before anything is written.
    """
    qa_dir, out_dir = Path(qa_dir), Path(out_dir)
    if not qa_dir.is_dir():
        raise InputError(qa_dir, "no such folder")
    store = Path(store) if store else qa_dir.parent / "store.duckdb"
    if not store.is_file():
        raise InputError(store, "no such store file (pass --store)")
    files = [f for f in sorted(qa_dir.glob("*.jsonl")) if registered_spec(f.stem) is not None]
    if not files:
        raise InputError(qa_dir, "no question files of a registered task (<task_id>.jsonl; `streamgaze tasks list`)")
    info = _StoreInfo(store)
    outputs: dict[str, list] = {}
    summary: dict[str, dict] = {}
    for f in files:
        poll = _poll_s(qa_dir, f.stem)
        items, changed = [], 0
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{f}: row {n}"
            try:
                q = json.loads(line)
            except ValueError as exc:
                raise InputError(f, f"not JSON: {exc}", row=n) from None
            try:
                item, k = convert(q, info, poll, where)
            except KeyError as exc:
                raise InputError(f, f"question lacks field {exc}", row=n) from None
            items.append(item)
            changed += k
        outputs[f.stem] = items
        summary[f.stem] = {"items": len(items), "changed_points": changed}
    out_dir.mkdir(parents=True, exist_ok=True)
    for task_id, items in outputs.items():
        (out_dir / f"{task_id}.json").write_text(json.dumps(items, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary
