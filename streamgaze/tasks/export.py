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

from streamgaze.errors import InputError, PluginError, StreamGazeError
from streamgaze.gaze.ingest import read_text
from streamgaze.paths import check_outputs, safe_name, write_files
from streamgaze.store import check_store_path, open_store
from streamgaze.tasks import names
from streamgaze.tasks.api import LETTERS
from streamgaze.tasks.spec import LoadedTask, load_task_specs, release_task_type

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


def released_intervals(question: dict) -> list[dict]:
    """A proactive question's event intervals as the released files list them: merged for display
    (`merge_intervals`), each ``{"start": "MM:SS", "end": "MM:SS"}``."""
    events = (question.get("evidence") or {}).get("event_intervals", [])
    return [{"start": mmss(s), "end": mmss(e)} for s, e in merge_intervals(events)]


def expected_at(t: float, events, window_s: float) -> int:
    """tasks.md 2.9: 1 iff some event [s, e] meets the window (t - W, t]: s <= t and e > t - W."""
    return int(any(s <= t and e > t - window_s for s, e in events))


class ReleaseStore:
    """What the export reads from the store: video rows, episode times, gazed names per episode."""

    def __init__(self, store_path: Path | None):
        self.videos: dict[str, tuple[str, str]] = {}
        self.episodes: dict[tuple[str, str], tuple[float, float]] = {}
        if store_path is None:
            return
        with open_store(store_path, read_only=True) as store:
            for vid, dataset, path in store.con.execute("SELECT video_id, coalesce(dataset, ''), coalesce(path, '') FROM videos").fetchall():
                self.videos[vid] = (dataset, path)
            for vid, eid, t0, t1 in store.con.execute("SELECT video_id, episode_id, t_start, t_end FROM episodes").fetchall():
                self.episodes[(vid, eid)] = (float(t0), float(t1))
            rows = store.con.execute("SELECT video_id, episode_id, name FROM objects WHERE role = 'gazed'").fetchall()
        self.gazed_keys: dict[tuple[str, str], set[str]] = {}
        for vid, eid, name in rows:
            self.gazed_keys.setdefault((vid, eid), set()).add(names.key(name))

    def episode(self, video_id: str, episode_id: str) -> tuple[float, float]:
        """``(t_start, t_end)`` of an episode; an episode the store lacks is an error the exporter places."""
        try:
            return self.episodes[(video_id, episode_id)]
        except KeyError:
            raise StreamGazeError(f"episode {episode_id!r} of video {video_id!r} is not in the store") from None

    def gazed(self, video_id: str, episode_id: str) -> set[str]:
        """The name keys gazed in an episode (`streamgaze.tasks.names.key`)."""
        return self.gazed_keys.get((video_id, episode_id), set())

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


def convert(q: dict, task: LoadedTask, info: ReleaseStore, poll_s: float) -> tuple[dict, int]:
    """One question line of ``task`` -> (released item, number of test points whose type changed)."""
    spec, logic = task.spec, task.logic
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
        qq = {
            "task_type": task_type,
            "question": q["question"],
            "time_stamp": mmss(q["time_s"], ceil=True),
            "first_appearance": mmss(ev.get("onset_s", events[0][0] if events else q["time_s"])),
            "test_info": test_info,
            "target_object": ev.get("target", ""),
            "required_ability": ability,
        }
        last = max([p["t_s"] for p in q.get("test_points", [])] or [q["time_s"]])
        response = f"[{mmss(q['time_s'])} - {mmss(last)}]"
    else:
        qq = _mcq(q, task_type, ability)
        response = f"[{mmss(q['clip'][0])} - {mmss(q['clip'][1])}]"
    try:
        qq.update(logic.release_fields(q, info))
    except (KeyError, StreamGazeError):
        raise
    except Exception as exc:
        raise PluginError(task.source.plugin, f"task {spec.id} release_fields", exc, source=task.source) from exc
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
    check_store_path(store)
    if not store.is_file():
        raise InputError(store, "no such store file (pass --store)")
    tasks = {t.id: t for t in load_task_specs()}
    files = [f for f in sorted(qa_dir.glob("*.jsonl")) if f.stem in tasks]
    if not files:
        raise InputError(qa_dir, "no question files of a registered task (<task_id>.jsonl; `streamgaze tasks list`)")
    out_names = {f.stem: f"{safe_name(f.stem)}.json" for f in files}
    check_outputs(out_dir, out_names.values())  # before converting: a bad --out fails at once, nothing written
    info = ReleaseStore(store)
    outputs: dict[str, list] = {}
    summary: dict[str, dict] = {}
    for f in files:
        poll = _poll_s(qa_dir, f.stem)
        items, changed = [], 0
        text = read_text(f) if f.stat().st_size else ""  # a task without questions wrote an empty file
        for n, line in enumerate(text.splitlines(), start=1):  # UTF-8 checked: one line if not
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except ValueError as exc:
                raise InputError(f, f"not JSON: {exc}", row=n) from None
            try:
                item, k = convert(q, tasks[f.stem], info, poll)
            except KeyError as exc:
                raise InputError(f, f"question lacks field {exc}", row=n) from None
            except StreamGazeError as exc:
                raise InputError(f, str(exc), row=n) from None
            items.append(item)
            changed += k
        outputs[f.stem] = items
        summary[f.stem] = {"items": len(items), "changed_points": changed}
    write_files(out_dir, {out_names[task_id]: json.dumps(items, indent=2, ensure_ascii=False) + "\n"
                          for task_id, items in outputs.items()})
    return summary
