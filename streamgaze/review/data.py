"""Questions for review, and the store's ``reviews`` table: recording verdicts and human answers, the latest
row per (reviewer, question, test point) winning; human accuracy per task; the ids marked invalid.

A review row: ``reviewer, question_id, task, point_idx (-1 for a multiple-choice question, the test point's
index for a proactive one), mode ('verify'|'answer'), verdict ('valid'|'invalid', verify mode), reason,
answer ('A'.. or 'yes'/'no', answer mode), correct (answer mode), created_at (UTC)``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.eval.runner import load_questions
from streamgaze.eval.score import INTERVALS, summarise
from streamgaze.eval.stats import Units, fleiss_kappa
from streamgaze.gaze.agreement import cohen_kappa
from streamgaze.store import open_store
from streamgaze.tasks.spec import family_of

MODES = ("verify", "answer")
VERDICTS = ("valid", "invalid")

# latest row per (reviewer, question, point, mode): ties on created_at broken by insertion order (rowid)
_LATEST = """
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY reviewer, question_id, point_idx, mode
                                     ORDER BY created_at DESC, rowid DESC) AS _rank
        FROM reviews WHERE {where}) WHERE _rank = 1
"""


@dataclass
class QuestionSet:
    """Every question of a QA folder, in task then file order, with lookups."""

    qa_dir: Path
    questions: list[dict] = field(default_factory=list)
    by_id: dict[str, dict] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, qa_dir) -> "QuestionSet":
        qa_dir = Path(qa_dir)
        if not qa_dir.is_dir():
            raise InputError(qa_dir, "no such question folder")
        files = sorted(qa_dir.glob("*.jsonl")) or sorted(p for p in qa_dir.glob("*.json") if p.stem != "generation_report")
        if not files:
            raise InputError(qa_dir, "no <task_id>.jsonl question files in this folder")
        qs = cls(qa_dir)
        for path in files:
            for q in load_questions(path):
                if q["id"] in qs.by_id:
                    continue
                qs.questions.append(q)
                qs.by_id[q["id"]] = q
            if path.stem not in qs.tasks:
                qs.tasks.append(path.stem)
        for q in qs.questions:
            if q["task"] not in qs.tasks:
                qs.tasks.append(q["task"])
        return qs

    def of_task(self, task: str | None) -> list[dict]:
        return [q for q in self.questions if task in (None, "", q["task"])]


def is_proactive(q: dict) -> bool:
    return bool(q.get("test_points"))


def answer_correct(q: dict, answer: str, point_idx: int = -1) -> bool:
    """The human's ``answer`` ('A'.. or 'yes'/'no') against the question's key."""
    if is_proactive(q):
        return answer == q["test_points"][point_idx]["expected"]
    return answer == q["answer"]


def has_reviews(store) -> bool:
    """A store opened read-only before the ``reviews`` table existed has none."""
    rows = store.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'reviews'").fetchall()
    return bool(rows and rows[0][0])


def record_review(store_path, q: dict, *, reviewer: str, mode: str, verdict: str | None = None,
                  reason: str | None = None, answer: str | None = None, point_idx: int = -1) -> dict:
    """Validate and append one review row (one transaction); returns the row."""
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise StreamGazeError("a review needs a reviewer name")
    if mode not in MODES:
        raise StreamGazeError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    correct = None
    if mode == "verify":
        if verdict not in VERDICTS:
            raise StreamGazeError(f"verdict must be valid or invalid, not {verdict!r}")
        if verdict == "invalid" and not (reason or "").strip():
            raise StreamGazeError("say why the question is invalid (a reason is required)")
        answer = None
        point_idx = -1
    else:
        if is_proactive(q):
            if not 0 <= point_idx < len(q["test_points"]):
                raise StreamGazeError(f"question {q['id']!r} has no test point {point_idx}")
            answer = (answer or "").strip().lower()
            if answer not in ("yes", "no"):
                raise StreamGazeError(f"answer yes or no, not {answer!r}")
        else:
            point_idx = -1
            answer = (answer or "").strip().upper()
            letters = [chr(ord("A") + i) for i in range(len(q["options"]))]
            if answer not in letters:
                raise StreamGazeError(f"answer one of {', '.join(letters)}, not {answer!r}")
        correct = answer_correct(q, answer, point_idx)
        verdict = None
    row = {
        "reviewer": reviewer, "question_id": q["id"], "task": q["task"], "point_idx": int(point_idx), "mode": mode,
        "verdict": verdict, "reason": (reason or "").strip() or None, "answer": answer, "correct": correct,
        "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
    }
    with open_store(store_path) as store, store.transaction() as con:
        con.execute("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(row.values()))
    row["created_at"] = row["created_at"].isoformat(timespec="seconds") + "Z"
    return row


def latest_reviews(store, *, mode: str | None = None, reviewer: str | None = None) -> list[dict]:
    """The latest review row per (reviewer, question, point, mode), optionally of one mode / reviewer."""
    if not has_reviews(store):
        return []
    where, params = ["true"], []
    if mode:
        where.append("mode = ?")
        params.append(mode)
    if reviewer:
        where.append("reviewer = ?")
        params.append(reviewer)
    rows = store.rows(_LATEST.format(where=" AND ".join(where)) + " ORDER BY created_at", params)
    for r in rows:
        r.pop("_rank", None)
    return rows


def invalid_question_ids(store) -> set[str]:
    """Questions whose latest verdict, by any one reviewer, is ``invalid`` (``generate --drop-invalid``)."""
    return {r["question_id"] for r in latest_reviews(store, mode="verify") if r["verdict"] == "invalid"}


def question_videos(store, question_ids) -> dict[str, str]:
    """The video of each question the store's ``qa_items`` knows (the cluster of the human intervals)."""
    ids = sorted(set(question_ids))
    if not ids:
        return {}
    rows = store.rows("SELECT id, video_id FROM qa_items WHERE id IN (SELECT unnest(?))", [ids])
    return {r["id"]: r["video_id"] for r in rows}


def human_scores(store_path, videos: dict[str, str] | None = None) -> dict:
    """Human accuracy per task from the answer-mode reviews (latest answer per reviewer, question and test
    point), shaped like one run of ``streamgaze score`` so it can sit beside the models. Intervals are
    clustered like the models' (videos from the store's ``qa_items``, then questions; a question's answers by
    every reviewer and at every test point form one unit). A question's video comes from ``videos`` (question
    id -> video id, e.g. the question files being reviewed or scored), else from the store's ``qa_items``; a
    question known to neither is its own video."""
    with open_store(store_path, read_only=True) as store:
        rows = latest_reviews(store, mode="answer")
        verdicts = latest_reviews(store, mode="verify")
        videos = {**question_videos(store, (r["question_id"] for r in rows)), **(videos or {})}
    by_task: dict[str, list[tuple[str, str, bool]]] = {}
    reviewers: set[str] = set()
    for r in rows:
        qid = r["question_id"]
        by_task.setdefault(r["task"], []).append((qid, videos.get(qid, f"question:{qid}"), bool(r["correct"])))
        reviewers.add(r["reviewer"])
    tasks, units = {}, {}
    for task, outcomes in sorted(by_task.items()):
        arr = np.array([ok for _, _, ok in outcomes], dtype=float)
        units[task] = Units.from_outcomes(outcomes)
        tasks[task] = {
            "accuracy": round(float(arr.mean()), 4), "n": len(arr), "correct": int(arr.sum()), "unparsed": 0,
            "ci95": units[task].interval(), "missing": 0, "family": family_of(task),
        }
    return {
        "model": "human",
        **summarise(tasks, units),
        "tasks": tasks,
        "reviewers": sorted(reviewers),
        "intervals": INTERVALS,
        "agreement": {"verdicts": agreement([(r["reviewer"], r["question_id"], r["verdict"]) for r in verdicts]),
                      "answers": agreement([(r["reviewer"], (r["question_id"], r["point_idx"]), r["answer"]) for r in rows]),
                      "answers_by_task": {task: agreement([(r["reviewer"], (r["question_id"], r["point_idx"]), r["answer"])
                                                           for r in rows if r["task"] == task]) for task in sorted(by_task)}},
    }


def agreement(ratings) -> dict | None:
    """Agreement between reviewers from ``(reviewer, item, label)`` triples (one per reviewer and item: the
    latest rows). Two reviewers: Cohen's kappa over the items both rated; more: Fleiss' kappa over the items
    rated by at least two (each item's own number of raters). ``agreement`` is the raw share of agreeing
    pairs of ratings; ``kappa`` is None where it is undefined (no shared item, or every rating the same label).
    None when fewer than two reviewers rated anything."""
    by_item: dict = {}
    reviewers: set[str] = set()
    for reviewer, item, label in ratings:
        if label is None:
            continue
        by_item.setdefault(item, {})[reviewer] = label
        reviewers.add(reviewer)
    if len(reviewers) < 2:
        return None
    shared = {k: v for k, v in by_item.items() if len(v) >= 2}
    out = {"method": "cohen" if len(reviewers) == 2 else "fleiss", "reviewers": len(reviewers), "items": len(shared)}
    if not shared:
        return {**out, "kappa": None, "agreement": None}
    if len(reviewers) == 2:
        first, second = sorted(reviewers)
        a = [v[first] for v in shared.values()]
        b = [v[second] for v in shared.values()]
        kappa = cohen_kappa(np.array(a, dtype=object).astype(str), np.array(b, dtype=object).astype(str))
        raw = float(np.mean([x == y for x, y in zip(a, b)]))
    else:
        labels = sorted({label for v in shared.values() for label in v.values()})
        col = {label: j for j, label in enumerate(labels)}
        table = np.zeros((len(shared), len(labels)))
        for i, v in enumerate(shared.values()):
            for label in v.values():
                table[i, col[label]] += 1
        kappa = fleiss_kappa(table)
        n_i = table.sum(axis=1)
        raw = float(np.mean((table * (table - 1)).sum(axis=1) / (n_i * (n_i - 1))))
    return {**out, "kappa": None if not np.isfinite(kappa) else round(float(kappa), 4), "agreement": round(raw, 4)}
