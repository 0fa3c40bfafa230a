"""Prompt texts, exactly as tasks.md 3.2 and 3.3 give them."""
from __future__ import annotations

from streamgaze.tasks.api import LETTERS
from streamgaze.tasks.spec import registered_spec

GAZE_SENTENCE = {
    "none": "",
    "overlay": "In this video, the green dot represents the gaze point (where the person is looking), and the red "
    "circle represents the field of view (FOV) area.",
    "salience": "The last image is a gaze heat map over the final frame: warmer colours mark where the person looked "
    "most in the last {S} seconds.",
    "scanpath-text": "Recent gaze (times in seconds of the video; x, y from 0 to 1, from the top-left corner):",
}

GAZE_MODES = tuple(GAZE_SENTENCE)

#: How the windowed yes/no prompt names a proactive task's event when its spec gives no ``alert_clause``.
DEFAULT_CLAUSE = "the {target} was visible"


def gaze_block(mode: str, *, S: float | None = None, scanpath_lines: list[str] | None = None) -> str:
    """``{gaze}``: the mode's sentence (and, for scanpath-text, its lines) plus a blank line; empty for none."""
    if mode == "none":
        return ""
    text = GAZE_SENTENCE[mode]
    if mode == "salience":
        text = text.format(S=_num(S if S is not None else 0.0))
    if mode == "scanpath-text":
        text = "\n".join([text, *(scanpath_lines or [])])
    return text + "\n\n"


def mcq_prompt(question: str, options: list[str], gaze: str = "") -> str:
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    letters = [LETTERS[i] for i in range(len(options))]
    if len(letters) > 1:
        listed = ", ".join(letters[:-1]) + ", or " + letters[-1]
    else:
        listed = "".join(letters)
    return (
        f"{gaze}Question: {question}\nOptions:\n" + "\n".join(lines)
        + f"\nAnswer the question with only the letter ({listed}) of the correct option.\n\nThe best option is:"
    )


def proactive_prompt(task: str, question: str, target: str, window_s: float, gaze: str = "") -> str:
    spec = registered_spec(task)
    clause = ((spec.alert_clause if spec is not None else None) or DEFAULT_CLAUSE).format(target=target)
    return (
        f"{gaze}You are monitoring a video stream. Based on what you have seen so far in the video, answer the "
        f"following question.\n\nQuestion: {question}\n\nAnswer \"Yes\" if {clause} at any time in the last "
        f"{_num(window_s)} seconds of the video; otherwise answer \"No\". Answer only with \"Yes\" or \"No\". "
        "No extra text."
    )


PROMPT_STYLES = ("windowed", "reference")

# The reference harness's proactive text (cumulative: "already seen"), for parity runs only; it contradicts our
# windowed ground truth after an event, so runs with it are flagged in run.json and the report.
REFERENCE_PROACTIVE = (
    "You are monitoring a video stream. Based on what you have seen so far in the video, answer the following "
    "question.\n\nQuestion: {question}\n\nIf you have already seen the requested object/event, answer \"Yes\".\n"
    "If you have not seen it yet, answer \"No\".\n\nAnswer only with \"Yes\" or \"No\".\n"
    "Do not include any additional text or explanation in your response."
)
REFERENCE_FLAG = ("prompt style 'reference' asks a cumulative question ('have you already seen it'), which "
                  "contradicts the windowed ground truth after an event: for parity with the reference only")


def reference_mcq_prompt(question: str, options: list[str], gaze: str = "") -> str:
    """The reference's MCQ text: ours with a newline in front of "Question:"."""
    return mcq_prompt(question, options, gaze + "\n")


def reference_proactive_prompt(question: str, gaze: str = "") -> str:
    return gaze + REFERENCE_PROACTIVE.format(question=question)


def window_of(question: dict) -> float:
    """W: the evidence's window if given, else the spacing of the test points, else 10 s."""
    ev = question.get("evidence") or {}
    for k in ("window_s", "poll_s"):
        if isinstance(ev.get(k), (int, float)) and ev[k] > 0:
            return float(ev[k])
    ts = sorted(float(p["t_s"]) for p in question.get("test_points") or [])
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b - a > 1e-6]
    return round(min(gaps), 3) if gaps else 10.0


def scanpath_line(t0: float, t1: float, x: float, y: float) -> str:
    return f"{t0:.2f}–{t1:.2f} s: ({x:.2f}, {y:.2f})"


def _num(v: float) -> str:
    return f"{v:g}"
