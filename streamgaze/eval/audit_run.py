"""``streamgaze audit run R``: proof from the run folder itself that the model never saw the future.

Every request a run sent is recorded with the clip it was built from, the times of the frames it carried and the
time of the newest gaze sample it showed (overlay dot, salience map, scanpath text). The audit reads those records
back and checks each against its question: frames and gaze at or before the question's time (the test point's for
proactive questions, the poll's for streaming), and the clip the one the protocol gives (the question's own, or
`reference_protocol.reference_clip` for a run with ``--protocol reference``). A record that cannot be checked (an
older run without clips, gaze drawn into a released video) is counted as unverified, never as clean.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from streamgaze.eval.reference_protocol import reference_clip
from streamgaze.eval.runner import PREDICTIONS, STREAM, items_of, read_predictions
from streamgaze.eval.score import load_run

FRAME_SLACK_S = 1e-4  # frame times are recorded to 4 decimals
TIME_SLACK_S = 1e-6  # gaze times to 6; clips are the question's own floats


def audit_run(run_dir) -> dict:
    """``{"checked": n, "leaks": [{"question_id", "point_idx", "reason"}], "unverified": {reason: count}}``."""
    run_dir = Path(run_dir)
    info, questions, _changed, _latest = load_run(run_dir)
    items = {it.key: it for qs in questions.values() for q in qs for it in items_of(q)}
    by_id = {q["id"]: q for qs in questions.values() for q in qs}
    leaks: list[dict] = []
    unverified: Counter = Counter()
    checked = 0
    gaze_drawn = info.get("videos_dir") is not None and info.get("gaze_prompt") == "overlay"
    reference = info.get("protocol") == "reference"  # its clips come from the question time, not the file's clip
    for name in (PREDICTIONS, STREAM):
        for row in read_predictions(run_dir / name):
            if row.get("outcome") == "missing":
                continue  # no video, nothing was sent
            key = (row["question_id"], int(row.get("point_idx", -1)))
            if name == STREAM:
                q = by_id.get(row["question_id"])
                expected = (0.0, float(row["t_s"])) if q is not None and row.get("t_s") is not None else None
                t_q = expected[1] if expected else None
            else:
                it = items.get(key)
                expected = None if it is None else (reference_clip(it) if reference else it.clip)
                t_q = None if it is None else (it.t_s if it.proactive else _question_time(it.q))
            if t_q is None:
                unverified["no such question in the run's question files"] += 1
                continue
            checked += 1
            reasons = row_leaks(row, t_q, expected)
            leaks += [{"question_id": key[0], "point_idx": key[1], "reason": r} for r in reasons]
            if row.get("clip") is None:
                unverified["clip not recorded (a run made before clips were recorded)"] += 1
            if gaze_drawn and row.get("gaze_until") is None and row.get("frames"):
                unverified["gaze drawn into the released video: its samples' times are unknown"] += 1
    return {"checked": checked, "leaks": leaks, "unverified": dict(sorted(unverified.items()))}


def _question_time(q: dict) -> float:
    """A multiple-choice question's time: ``time_s``, else the end of its clip (where the question is asked)."""
    t = q.get("time_s")
    return float(t) if t is not None else float(q["clip"][1])


def row_leaks(row: dict, t_q: float, expected_clip: tuple[float, float] | None) -> list[str]:
    """What in one recorded request came after the question time ``t_q`` or strays from its clip."""
    out = []
    late = [f for f in row.get("frames") or [] if f > t_q + FRAME_SLACK_S]
    if late:
        out.append(f"frame at {max(late):.4f} s after the question time {t_q:.4f} s")
    gaze = row.get("gaze_until")
    if gaze is not None and gaze > t_q + TIME_SLACK_S:
        out.append(f"gaze sample at {gaze:.6f} s after the question time {t_q:.4f} s")
    clip = row.get("clip")
    if clip is not None and expected_clip is not None:
        if any(abs(float(a) - float(b)) > TIME_SLACK_S for a, b in zip(clip, expected_clip)):
            out.append(f"clip [{clip[0]}, {clip[1]}] is not the question's [{expected_clip[0]}, {expected_clip[1]}]")
        elif float(clip[1]) > t_q + TIME_SLACK_S:
            out.append(f"clip ends at {clip[1]} s, after the question time {t_q:.4f} s")
    return out


def verdict(result: dict) -> str:
    """The one line ``eval`` prints after a run."""
    n, leaks = result["checked"], result["leaks"]
    unverified = sum(result["unverified"].values())
    extra = f"; {unverified} records unverifiable" if unverified else ""
    if leaks:
        first = leaks[0]
        return (f"audit: {len(leaks)} leak(s) in {n} requests, e.g. {first['question_id']} point {first['point_idx']}: "
                f"{first['reason']}{extra} (streamgaze audit run for all)")
    return f"audit: {n} requests checked, none showed a frame or gaze after its question time{extra}"
