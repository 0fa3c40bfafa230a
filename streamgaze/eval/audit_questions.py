"""``streamgaze audit questions``: check released StreamGaze questions against the episode metadata in a store.

Each question of a release-format folder (``<task_id>.json``, read by `streamgaze.eval.release`) is matched to the
candidate of its task that it was made from: the video is the ``video_path`` stem; a multiple-choice question's
candidate is the one the engine would ask at the released ``time_stamp`` (``t <= time_stamp < t + 1``: the export
writes whole seconds, rounded up); a proactive question's is the one with its target. The task's own logic
(`TaskLogic.audit_candidates` and `TaskLogic.audit_build`, so no rule is written twice) says what the metadata
gives there, and the question is checked for these faults:

- ``wrong_answer``: the lettered option is not the answer the metadata gives;
- ``options_conflict``: two options name one thing under the name rules (`streamgaze.tasks.names.conflict`);
- ``distractor_correct``: a distractor is another valid answer (it conflicts with the task's exclusion set X);
- ``after_question_time``: the decisive evidence ends after the question time, or an option names an object that
  first appears after it;
- ``evidence_outside_clip``: the decisive episode starts before the clip the question is shown with;
- ``wrong_test_point_type``: a proactive test point's ``type`` disagrees with the metadata at its ``realtime``.

What the metadata cannot settle is *unverifiable*, with its reason, never a fault: a video the store lacks, no
candidate of the task at that time with that answer, a candidate the task's logic skips (e.g. OAR without
attribute data: ``no_attributes``), label or sequence options whose wording matches none of the metadata's.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from streamgaze.errors import InputError, PluginError, StreamGazeError
from streamgaze.eval.release import load_release_file, parse_time
from streamgaze.paths import check_outputs, write_files
from streamgaze.store import check_store_path, open_store
from streamgaze.tasks import names
from streamgaze.tasks.api import LETTERS, Candidate, Draft, Skip, TaskLogic
from streamgaze.tasks.draw import question_time
from streamgaze.tasks.export import DEFAULT_POLL_S, expected_at
from streamgaze.tasks.rng import candidate_rng
from streamgaze.tasks.spec import load_task_specs
from streamgaze.tasks.timeline import Timeline, TimelineRows, ms

FAULTS = {
    "wrong_answer": "the lettered option is not the answer the metadata gives",
    "options_conflict": "two options name one thing",
    "distractor_correct": "a distractor is also a valid answer",
    "after_question_time": "rests on an event after the question time",
    "evidence_outside_clip": "the decisive episode starts before the clip",
    "wrong_test_point_type": "a test point's type disagrees with the metadata",
}
FAULTS_FILE = "faults.jsonl"
MAPPING_FILE = "mapping.jsonl"
#: Option kinds whose texts are names from the metadata, so an option matching no valid answer is wrong; label
#: and sequence texts may be worded otherwise (an LLM's rewording, another sequence notation).
_NAMED_KINDS = ("object", "attribute")


@dataclass
class Finding:
    """The verdict on one released question: ``status`` is "ok", "faulty" or "unverifiable"."""

    task: str
    item: int
    question: int
    video_id: str
    reasons: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    candidate: str | None = None  # the key of the matched candidate, if any

    @property
    def status(self) -> str:
        return "faulty" if self.reasons else ("unverifiable" if self.unverifiable else "ok")

    def fault(self, reason: str, **evidence) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        for k, v in evidence.items():
            self.evidence.setdefault(reason, {}).setdefault(k, v)

    def line(self) -> dict:
        """The ``faults.jsonl`` line."""
        return {"task": self.task, "item": self.item, "question": self.question, "reasons": list(self.reasons),
                "evidence": {"video_id": self.video_id, "candidate": self.candidate, **self.evidence}}


@dataclass
class AuditResult:
    findings: list[Finding]
    files: list[str]

    def summary(self) -> dict:
        """Per task file: questions, faulty, unverifiable, and the counts by reason; and the totals."""
        tasks: dict[str, dict] = {stem: _empty() for stem in self.files}
        total = _empty()
        for f in self.findings:
            for row in (tasks.setdefault(f.task, _empty()), total):
                row["questions"] += 1
                if f.status == "faulty":
                    row["faulty"] += 1
                    row["reasons"].update(f.reasons)
                elif f.status == "unverifiable":
                    row["unverifiable"] += 1
                    row["unverifiable_reasons"].update(f.unverifiable)
        return {"tasks": {k: _plain(v) for k, v in tasks.items()}, "total": _plain(total)}

    def faulty(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "faulty"]


def _plain(row: dict) -> dict:
    """A summary row as JSON: the counters as dicts sorted by reason."""
    return {**row, "reasons": dict(sorted(row["reasons"].items())),
            "unverifiable_reasons": dict(sorted(row["unverifiable_reasons"].items()))}


def _empty() -> dict:
    return {"questions": 0, "faulty": 0, "unverifiable": 0, "reasons": Counter(), "unverifiable_reasons": Counter()}


# ---- reading ----------------------------------------------------------------------------------------------------

def _release_files(qa_dir: Path) -> list[Path]:
    if not qa_dir.is_dir():
        raise InputError(qa_dir, "no such folder of released question files")
    files = sorted(qa_dir.glob("*.json"))
    if not files:
        raise InputError(qa_dir, "no released question files (<task_id>.json) in the folder")
    return files


def _check_store(store: Path) -> None:
    check_store_path(store)
    if not store.is_file():
        raise InputError(store, "no such store file (import the metadata with `streamgaze ingest streamgaze-metadata`)")


def _raw_questions(path: Path) -> list[list[dict]]:
    """The released items' question dicts, as written (for a task's own fields); the file was checked already."""
    data = json.loads(path.read_bytes().decode("utf-8-sig"))
    return [list(item["questions"]) for item in data]


# ---- the audit --------------------------------------------------------------------------------------------------

def audit_questions(qa_dir, store) -> AuditResult:
    """Audit every question of the released files in ``qa_dir`` against the store's metadata (read only)."""
    qa_dir, store = Path(qa_dir), Path(store)
    files = _release_files(qa_dir)
    _check_store(store)
    loaded = [(f, load_release_file(f)) for f in files]  # every file checked before the audit starts
    tasks = {t.id: t for t in load_task_specs()}
    with open_store(store, read_only=True) as st:
        rows = TimelineRows(st)
    index = {v: i for i, v in enumerate(rows.video_ids)}
    timelines: dict[str, Timeline] = {}
    findings: list[Finding] = []
    memo: dict = {}  # shared by the questions of one audit: a video's candidates and drafts recur across them
    for path, questions in loaded:
        raw = _raw_questions(path)
        for q in questions:
            _stem, i, j = q["id"].rsplit("-", 2)
            i, j = int(i), int(j)
            vid = q["video_id"]
            if vid not in timelines and vid in index:
                timelines[vid] = rows.timeline(index[vid])
            finding = Finding(path.stem, i, j, vid)
            auditor = _Auditor(tasks.get(q["task"]), timelines.get(vid), memo)
            auditor.audit(q, raw[i][j], finding)
            findings.append(finding)
    return AuditResult(findings, [f.stem for f in files])


class _Auditor:
    """One question's audit: its task and its video's timeline (None when the store lacks them)."""

    def __init__(self, task, video: Timeline | None, memo: dict):
        self.task, self.video = task, video
        # ("drafts", task, video, candidate) -> Draft | Skip, for logics whose audit draft ignores the question;
        # ("candidates", task, video) -> `_Candidates`
        self.memo = memo

    def audit(self, q: dict, raw: dict, f: Finding) -> None:
        if q["options"]:
            _check_option_names(q, f, self._kind(None))
        if self.video is None or not self.video.usable:
            f.unverifiable.append("video_not_in_store")
            return
        if self.task is None:
            f.unverifiable.append("task_not_registered")
            return
        key = ("candidates", self.task.id, self.video.video_id)
        candidates = self.memo.get(key)
        if candidates is None:
            try:
                listed = list(self.task.logic.audit_candidates(self.video, self.task.params))
            except StreamGazeError:
                raise
            except Exception as exc:
                raise self._logic_error(f"audit_candidates (video {self.video.video_id})", exc) from exc
            candidates = self.memo[key] = _Candidates(listed, [self._time(c) for c in listed])
        if q["family"] == "proactive":
            self._proactive(q, raw, f, candidates)
        else:
            self._choice(q, raw, f, candidates)

    # -- drafts --
    def _kind(self, draft: Draft | None):
        spec_kind = self.task.spec.option_kind if self.task is not None else "object"
        return (draft.kind if draft is not None and draft.kind else None) or (spec_kind if spec_kind != "none" else "object")

    def _time(self, cand: Candidate) -> float:
        return ms(question_time(self.task, cand, self.video))

    def _draft(self, cand: Candidate, raw: dict) -> Draft | Skip:
        logic = self.task.logic
        shared = type(logic).audit_build is TaskLogic.audit_build
        memo = ("drafts", self.task.id, self.video.video_id, cand.key)
        if shared and memo in self.memo:
            return self.memo[memo]
        rng = candidate_rng(0, self.video.video_id, self.task.id, cand.key)
        try:
            draft = logic.audit_build(cand, self.video.before(self._time(cand)), self.task.params, rng,
                                      video=self.video, released=raw)
            if not isinstance(draft, (Draft, Skip)):
                raise TypeError(f"audit_build() returned {type(draft).__name__}, not a Draft or a Skip")
        except StreamGazeError:
            raise
        except Exception as exc:
            raise self._logic_error(f"audit_build (video {self.video.video_id}, candidate {cand.key})", exc) from exc
        if shared:
            self.memo[memo] = draft
        return draft

    def _logic_error(self, what: str, exc: BaseException) -> PluginError:
        return PluginError(self.task.source.plugin, f"task {self.task.spec.id} {what}", exc, source=self.task.source)

    # -- multiple choice --
    def _choice(self, q: dict, raw: dict, f: Finding, candidates: _Candidates) -> None:
        timed = candidates.asked_at(q["time_s"])
        keyed = q["options"][LETTERS.index(q["answer"])]
        skips: list[str] = []
        best = None  # (candidate, draft)
        for cand in timed:
            draft = self._draft(cand, raw)
            if isinstance(draft, Skip):
                skips.append(draft.reason)
                continue
            answers = _answer_keys(draft, self._kind(draft))
            if names.key(keyed, self._kind(draft)) in answers:
                best = (cand, draft)
                break
            if best is None or (not _any_answer(best[1], q["options"], self._kind(best[1]))
                                and _any_answer(draft, q["options"], self._kind(draft))):
                best = (cand, draft)
        if best is None:
            found = self._same_answer_elsewhere(q, raw, candidates, keyed)
            if found is None:
                f.unverifiable.append(skips[0] if skips else "no_candidate")
                f.candidate = timed[0].key if timed else None  # the same candidate, for the regenerated mapping
                return
            cand, draft = found
            f.candidate = cand.key
            self._placement(q, f, cand)
            if not f.reasons:
                f.unverifiable.append("time_not_matched")
                return
        else:
            cand, draft = best
            f.candidate = cand.key
        self._answer(q, f, draft)
        self._future_options(q, f, draft)

    def _same_answer_elsewhere(self, q, raw, candidates: _Candidates, keyed):
        """The candidate at another time whose answer is the lettered option: the latest one asked by the question
        time, else the earliest after it (to tell a question asked too early from one asked too late)."""
        before, after = None, None
        for cand, tc in zip(candidates.listed, candidates.times):
            draft = self._draft(cand, raw)
            if isinstance(draft, Skip) or names.key(keyed, self._kind(draft)) not in _answer_keys(draft, self._kind(draft)):
                continue
            if tc <= q["time_s"]:
                if before is None or tc >= before[2]:
                    before = (cand, draft, tc)
            elif after is None or tc < after[2]:
                after = (cand, draft, tc)
        found = before or after
        return None if found is None else found[:2]

    def _placement(self, q: dict, f: Finding, cand: Candidate) -> None:
        """The decisive evidence against the released time and clip."""
        tc, (c0, c1) = self._time(cand), q["clip"]
        e = cand.episode
        if tc > c1:
            f.fault("after_question_time", time_s=c1, decisive_until_s=tc, episode=e.id if e else None)
        elif e is not None and e.t_start < c0:
            f.fault("evidence_outside_clip", clip=[c0, c1], episode=e.id, episode_span=[e.t_start, e.t_end])

    def _answer(self, q: dict, f: Finding, draft: Draft) -> None:
        kind = self._kind(draft)
        options = q["options"]
        k = LETTERS.index(q["answer"])
        answers = _answer_keys(draft, kind)
        correct = [LETTERS[i] for i, o in enumerate(options) if names.key(o, kind) in answers]
        expected = draft.answer if draft.answer is not None else sorted(draft.answer_pool)
        if LETTERS[k] not in correct:
            if correct or kind in _NAMED_KINDS:
                f.fault("wrong_answer", answer=q["answer"], correct_options=correct, metadata_answer=expected)
            else:
                f.unverifiable.append("answer_wording")
            return
        valid = [draft.answer] if draft.answer is not None else list(draft.answer_pool)
        excluded = names.ConflictSet([*valid, *draft.exclude], kind)  # X: the answer and every other valid one
        also = [LETTERS[i] for i, o in enumerate(options)
                if i != k and excluded.conflicts(o) and not names.conflict(o, options[k], kind)]
        if also:
            f.fault("distractor_correct", options=also, metadata_answer=expected)

    def _future_options(self, q: dict, f: Finding, draft: Draft) -> None:
        """An option naming an object that the video shows only after the question time (object options only)."""
        if self._kind(draft) != "object":
            return
        seen_then = self.video.before(q["time_s"]).seen_names
        for letter, option in zip(LETTERS, q["options"]):
            k = names.key(option)
            if k in seen_then or k not in self.video.seen_names:
                continue
            first = next(e for e in self.video.episodes if k in e.seen_set)
            f.fault("after_question_time", time_s=q["time_s"])
            f.evidence["after_question_time"].setdefault("options", []).append(
                {"option": letter, "name": k, "first_seen_s": first.t_start, "episode": first.id})

    # -- proactive --
    def _proactive(self, q: dict, raw: dict, f: Finding, candidates: _Candidates) -> None:
        target = names.key(q["evidence"].get("target") or "")
        draft, skipped = None, None
        for cand in candidates.listed:
            d = self._draft(cand, raw)
            if isinstance(d, Draft) and names.key(str((d.evidence or {}).get("target", ""))) == target:
                draft, f.candidate = d, cand.key
                break
            if isinstance(d, Skip) and names.key(str(cand.data.get("target", ""))) == target:
                skipped = d.reason  # `alert_candidates` names the target: the task's reason, not "no_candidate"
        if draft is None:
            f.unverifiable.append(skipped or "no_candidate")
            return
        events = [(float(s), float(e)) for s, e in draft.evidence.get("event_intervals", [])]
        window = float(getattr(self.task.params, "proactive_poll_s", DEFAULT_POLL_S))
        wrong = []
        for n, point in enumerate(raw.get("test_info") or []):
            if point.get("type") is None:  # the reference scores only points with a type
                continue
            t = parse_time(point["realtime"], where="realtime")
            expected = expected_at(t, events, window)
            if int(point["type"]) != expected:
                wrong.append({"point": n, "realtime": point["realtime"], "type": int(point["type"]), "metadata_type": expected})
        if wrong:
            f.fault("wrong_test_point_type", points=wrong, event_intervals=[list(e) for e in events], window_s=window)


class _Candidates:
    """A task's candidates on a video with the time the engine asks each at, found by time with a bisection."""

    def __init__(self, listed: list[Candidate], times: list[float]):
        self.listed, self.times = listed, times
        self._order = sorted(range(len(listed)), key=lambda i: (times[i], i))
        self._sorted = [times[i] for i in self._order]

    def asked_at(self, t: float) -> list[Candidate]:
        """The candidates asked at ``t`` in whole seconds rounded up: ``time <= t < time + 1``, in listed order."""
        lo, hi = bisect_right(self._sorted, ms(t - 1)), bisect_right(self._sorted, t)
        return [self.listed[i] for i in sorted(self._order[lo:hi])]


def _answer_keys(draft: Draft, kind) -> set[str]:
    return {names.key(a, kind) for a in ([draft.answer] if draft.answer is not None else draft.answer_pool)}


def _any_answer(draft: Draft, options, kind) -> bool:
    answers = _answer_keys(draft, kind)
    return any(names.key(o, kind) in answers for o in options)


def _check_option_names(q: dict, f: Finding, kind) -> None:
    """Two options that name one thing (equal keys, a whole-word sub-phrase, a confusable pair): a fault whatever
    the metadata says."""
    options = q["options"]
    pairs = [[LETTERS[i], LETTERS[j]] for i in range(len(options)) for j in range(i + 1, len(options))
             if names.conflict(options[i], options[j], kind)]
    if pairs:
        f.fault("options_conflict", pairs=pairs)


# ---- outputs ----------------------------------------------------------------------------------------------------

def check_audit_outputs(out_dir=None, regenerate_dir=None) -> None:
    """Every output path checked before the audit writes anything (a bad one is one line, nothing written)."""
    if out_dir is not None:
        check_outputs(Path(out_dir), [FAULTS_FILE])
    if regenerate_dir is not None:
        from streamgaze.tasks.generate import output_names

        regenerate_dir = Path(regenerate_dir)
        check_outputs(regenerate_dir, [MAPPING_FILE])
        check_outputs(regenerate_dir / "questions", output_names(t.id for t in load_task_specs()))


def write_faults(result: AuditResult, out_dir) -> Path:
    """``OUT/faults.jsonl``: one line per faulty question."""
    out_dir = Path(out_dir)
    check_outputs(out_dir, [FAULTS_FILE])
    text = "".join(json.dumps(f.line(), ensure_ascii=False) + "\n" for f in result.faulty())
    write_files(out_dir, {FAULTS_FILE: text})
    return out_dir / FAULTS_FILE


def regenerate(store, out_dir, result: AuditResult, seed: int = 0) -> dict:
    """The corrected benchmark: the store's metadata through every registered task spec (``OUT/questions``, as
    ``streamgaze generate`` writes them, without touching the store), exported in the released layout
    (``OUT/qa``), and ``OUT/mapping.jsonl``: each released question whose candidate (same video, task and
    time or episode) has a new question, with the new one's position in ``OUT/qa/<task_id>.json``."""
    from streamgaze.tasks.export import export_streamgaze_json
    from streamgaze.tasks.generate import generate, output_files, output_names

    store, out_dir = Path(store), Path(out_dir)
    tasks = load_task_specs()
    questions_dir, qa_dir = out_dir / "questions", out_dir / "qa"
    check_outputs(questions_dir, output_names(t.id for t in tasks))
    check_outputs(out_dir, [MAPPING_FILE])
    with open_store(store, read_only=True) as ro:
        results = generate(ro, tasks, seed=seed)
    files, _report = output_files(results, seed)
    write_files(questions_dir, files)
    exported = export_streamgaze_json(questions_dir, qa_dir, store=store)
    positions = {item["id"]: (r.task_id, n) for r in results for n, item in enumerate(r.items)}
    mapping = []
    for f in result.findings:
        if f.candidate is None:
            continue
        new = positions.get(f"{f.task}/{f.video_id}/{f.candidate}")
        if new is not None:
            mapping.append({"task": f.task, "item": f.item, "question": f.question, "status": f.status,
                            "new_item": new[1], "new_id": f"{f.task}/{f.video_id}/{f.candidate}"})
    write_files(out_dir, {MAPPING_FILE: "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in mapping)})
    return {"questions": {t: r["items"] for t, r in exported.items()}, "mapped": len(mapping),
            "released": len(result.findings), "qa_dir": str(qa_dir), "mapping": str(out_dir / MAPPING_FILE)}

