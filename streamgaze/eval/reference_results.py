"""``streamgaze export reference-results``: a run folder in the StreamGaze reference's result layout, so the
reference's own ``evaluate_results.py`` (or anything written for it) can read our runs.

``DIR/NAME/results/<task_id>_output.json`` (``results_viz`` with ``viz``), one file per question file of the run:
the released items (`streamgaze.tasks.export`'s shape, ``{"response_time", "questions", "video_categories",
"video_path"}``) in the question file's order, each annotated with the run's answers:

- Released ``.json`` question files: their own items, unchanged apart from the additions, in order (the
  question ids ``<stem>-<item>-<question>`` of `streamgaze.eval.release` say which prediction is which).
- Our ``.jsonl`` files: each question converted by `streamgaze.tasks.export.convert` (the store, when there is
  one, gives video rows and episode times), one item per question. The proactive ``test_info`` ``type`` is the
  expected answer the run was scored against (1 = yes), not recomputed at the floored second as
  ``export streamgaze-json`` does, so the reference's scoring of these files equals ``score --scoring reference``.
- Multiple choice: the item gains ``model_predictions``, one entry per answered question,
  ``{"question", "time_stamp", "model_prediction" (the raw response), "model_response_time_sec" (the last
  attempt's ``latency_s``), "model_response_time_formatted" ("1.23s", two decimals)}``.
- Proactive: each answered ``test_info`` entry gains ``response``, ``response_time_sec`` and ``cost`` (the
  prediction's ``cost``, 0.0 when unknown).
- A question or test point without a prediction (or whose request failed) gets no entry / no ``response``: the
  reference leaves such questions out of its denominator.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.eval.runner import load_questions
from streamgaze.eval.score import load_run, question_dir
from streamgaze.paths import check_outputs, safe_name, write_files
from streamgaze.store import check_store_path
from streamgaze.tasks.export import DEFAULT_POLL_S, ReleaseStore, convert
from streamgaze.tasks.spec import load_task_specs


def _answered(row: dict | None) -> bool:
    return row is not None and row.get("outcome") != "error" and row.get("response") is not None


def response_time(seconds) -> tuple[float, str]:
    """``(seconds, "X.XXs")`` from a prediction's ``latency_s`` (0.0 when it has none)."""
    sec = round(float(seconds or 0.0), 4)
    return sec, f"{sec:.2f}s"


def annotate(item: dict, qids: list[str], latest: dict) -> dict:
    """A copy of the released ``item`` with the run's answers; ``qids[j]`` is our id of its question ``j``."""
    item = copy.deepcopy(item)
    preds = []
    for j, (qq, qid) in enumerate(zip(item.get("questions") or [], qids)):
        if qq.get("test_info") is not None:
            for k, point in enumerate(qq["test_info"]):
                row = latest.get((qid, k))
                if not _answered(row):
                    continue
                sec, _ = response_time(row.get("latency_s"))
                point.update(response=row["response"], response_time_sec=sec, cost=float(row.get("cost") or 0.0))
            continue
        row = latest.get((qid, -1))
        if not _answered(row):
            continue
        sec, text = response_time(row.get("latency_s"))
        preds.append({"question": qq.get("question"), "time_stamp": qq.get("time_stamp"),
                      "model_prediction": row["response"], "model_response_time_sec": sec,
                      "model_response_time_formatted": text})
    if preds:
        item["model_predictions"] = preds
    return item


def _released_items(path: Path) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    return [data] if isinstance(data, dict) else data


def export_reference_results(run_dir, out_dir, model_name: str, *, viz: bool = False, store=None) -> dict:
    """Write ``out_dir/<model_name>/results[_viz]/<task_id>_output.json`` for every question file of the run.

    Returns ``{task_id: {"items": n, "path": str}}``. Everything is converted before anything is written."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not model_name or safe_name(model_name) != model_name:
        raise InputError("--model-name", f"{model_name!r} is not a plain folder name")
    info, _questions, _changed, latest = load_run(run_dir)
    qa_dir = question_dir(run_dir)
    files = sorted(info.get("question_files") or {})
    target = out_dir / model_name / ("results_viz" if viz else "results")
    out_names = {Path(name).stem: f"{safe_name(Path(name).stem)}_output.json" for name in files}
    check_outputs(target, out_names.values())
    release_store = None
    tasks = None
    outputs: dict[str, list] = {}
    for name in files:
        path, stem = qa_dir / name, Path(name).stem
        items = []
        if path.suffix == ".json":
            for i, item in enumerate(_released_items(path)):
                qids = [f"{stem}-{i}-{j}" for j in range(len(item.get("questions") or []))]
                items.append(annotate(item, qids, latest))
        else:
            if tasks is None:
                tasks = {t.id: t for t in load_task_specs()}
                release_store = _release_store(store, qa_dir)
            for row, q in enumerate(load_questions(path), start=1):
                task = tasks.get(q["task"])
                if task is None:
                    raise InputError(path, f"task {q['task']!r} is not registered (`streamgaze tasks list`)", row=row)
                try:
                    item, _ = convert(q, task, release_store, DEFAULT_POLL_S)
                except KeyError as exc:
                    raise InputError(path, f"question lacks field {exc}", row=row) from None
                except StreamGazeError as exc:
                    raise InputError(path, str(exc), row=row) from None
                for qq in item["questions"]:  # the type the run was scored against (module doc)
                    for point, tp in zip(qq.get("test_info") or [], q.get("test_points") or []):
                        point["type"] = 1 if tp["expected"] == "yes" else 0
                items.append(annotate(item, [q["id"]], latest))
        outputs[stem] = items
    write_files(target, {out_names[stem]: json.dumps(items, indent=2, ensure_ascii=False) + "\n"
                         for stem, items in outputs.items()})
    return {stem: {"items": len(items), "path": str(target / out_names[stem])} for stem, items in outputs.items()}


def _release_store(store, qa_dir: Path) -> ReleaseStore:
    """The store's video rows and episodes (``store``, else ``QA/../store.duckdb``); none when there is no store."""
    path = Path(store) if store else qa_dir.parent / "store.duckdb"
    if store:
        check_store_path(path)
        if not path.is_file():
            raise InputError(path, "no such store file")
    return ReleaseStore(path if path.is_file() else None)
