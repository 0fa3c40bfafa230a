"""The report: ``report.md`` (accuracy per task per run with 95 % intervals, families, overall, chance, outcome
kinds, answer-letter distributions, the streaming alert metric), ``report.html`` (the same tables and the chart in
one self-contained page: inline CSS, the PNG as a data URI, no scripts) and ``scores.png`` (bars per task per
run, chance and human lines). Several runs are shown side by side, one column each."""
from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import NamedTuple

import numpy as np

from streamgaze.paths import check_outputs

CHANCE_MCQ = 0.25
INTERVAL_NOTE = ("Intervals are 95 % clustered bootstrap intervals (1000 resamples): each resample draws videos with "
                 "replacement, then questions with replacement within each drawn video, because questions that share a "
                 "video are not independent; a proactive question with all its test points is one unit. Family and "
                 "overall intervals come from the same video draws as the task intervals.")
TABLE_TITLE = "Accuracy per task (95 % clustered bootstrap interval)"


def _ci_text(ci) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
HUMAN = 0.827  # the paper's human mean accuracy (context only; not comparable with demo numbers)


def _short(task: str) -> str:
    fam, _, rest = task.partition("_")
    words = rest.split("_")
    return f"{fam[:4]}:" + "".join(w[0] for w in words)


class _Cell(NamedTuple):
    """One run's accuracy for one task, as text: ``accuracy`` "0.250", ``interval`` "[0.00, 0.62]", ``missing``
    ", 2 missing" or ""; ``value`` is the accuracy as a number (the HTML bar's width)."""

    value: float
    accuracy: str
    interval: str
    missing: str


class _TaskRow(NamedTuple):
    task: str
    family: str
    n: int
    chance: str  # "" when the task has no chance level
    cells: list  # a _Cell per run, None where the run has no accuracy for the task


def _task_rows(scores_by_run: dict, names: list[str], tasks: list[str]) -> list[_TaskRow]:
    """The rows of the accuracy-per-task table, shared by the markdown and HTML renderers (which only format
    them). A task's family, n and chance come from the first run that scored it."""
    rows = []
    for t in tasks:
        ref = next(s["tasks"][t] for s in scores_by_run.values() if t in s["tasks"])
        cells = []
        for n in names:
            s = scores_by_run[n]["tasks"].get(t)
            if s is None or s["accuracy"] is None:
                cells.append(None)
            else:
                cells.append(_Cell(s["accuracy"], f"{s['accuracy']:.3f}", f"[{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]",
                                   f", {s['missing']} missing" if s["missing"] else ""))
        chance = ref.get("chance")
        rows.append(_TaskRow(t, ref["family"], ref["n"], "" if chance is None else f"{chance:.2f}", cells))
    return rows


REPORT_FILES = ("scores.png", "report.md", "scores.json", "report.html")


def write_report(scores_by_run: dict, out_dir, reference: dict | None = None, comparison: dict | None = None,
                 human: dict | None = None) -> list[Path]:
    """Write ``report.md``, ``scores.png`` and ``scores.json`` into ``out_dir``; return their paths. With
    ``reference`` (the same runs under `streamgaze.eval.score.score_run_reference`), both files add the section
    "Reference scoring": per task and run, our accuracy, the reference's and the difference. With
    ``comparison`` (`streamgaze.eval.compare.compare_runs` of two runs), the section "Paired comparison". With
    ``human`` (the review stage's human scores), the section "Human baseline": accuracy per task with clustered
    intervals and the agreement between reviewers."""
    out_dir = Path(out_dir)
    check_outputs(out_dir, REPORT_FILES)  # every target checked before the first is written
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(scores_by_run)
    tasks = sorted({t for s in scores_by_run.values() for t in s["tasks"]})
    png = out_dir / "scores.png"
    _chart(scores_by_run, tasks, png)

    md = ["# StreamGaze evaluation report", ""]
    md.append("| run | model | gaze prompt | overall | complete |")
    md.append("|---|---|---|---|---|")
    for n in names:
        s = scores_by_run[n]
        status = "yes" if s["complete"] else f"no ({s['tasks_scored']} tasks; missing: {', '.join(s['missing_tasks']) or '-'})"
        md.append(f"| {n} | {s.get('model')} | {s.get('gaze_prompt')} | {s['overall']:.3f} | {status} |")
    md += ["", f"## {TABLE_TITLE}", "", INTERVAL_NOTE, ""]
    md.append("| task | family | n | chance | " + " | ".join(names) + " |")
    md.append("|---|---|---|---|" + "---|" * len(names))
    for row in _task_rows(scores_by_run, names, tasks):
        cells = ["-" if c is None else f"{c.accuracy} {c.interval}{c.missing}" for c in row.cells]
        md.append(f"| {row.task} | {row.family} | {row.n} | {row.chance} | " + " | ".join(cells) + " |")
    fams = sorted({f for s in scores_by_run.values() for f in s["families"]})
    for f in fams:
        md.append(f"| **family {f}** | | | | " + " | ".join(
            f"{scores_by_run[n]['families'][f]:.3f}{_ci_text(scores_by_run[n].get('families_ci95', {}).get(f))}"
            if f in scores_by_run[n]["families"] else "-" for n in names) + " |")
    md.append("| **overall** | | | | " + " | ".join(f"**{scores_by_run[n]['overall']:.3f}**{_ci_text(scores_by_run[n].get('overall_ci95'))}"
                                                      for n in names) + " |")
    md += [
        "",
        f"Chance is {CHANCE_MCQ} for the 4-option multiple-choice tasks; for the proactive tasks the chance column is the "
        "majority-class rate of the test points (accuracy there is a micro average over points). Missing, unparsed, "
        "refused and errored answers all count as wrong. For context, the StreamGaze paper reports a human mean "
        f"accuracy of {HUMAN}; those numbers come from the paper's data and models and cannot be compared with these.",
        "",
        f"![accuracy per task]({png.name})",
        "",
        "## Outcomes",
        "",
        "| run | task | correct | wrong | unparsed | refused | errors | missing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        for t, s in scores_by_run[n]["tasks"].items():
            md.append(f"| {n} | {t} | {s['correct']} | {s['wrong']} | {s['unparsed']} | {s['refused']} | {s['errors']} | {s['missing']} |")
    md += ["", "## Answer letters", "", "Correct letters in the questions, and the letters each run answered.", ""]
    md.append("| task | correct letters | " + " | ".join(names) + " |")
    md.append("|---|---|" + "---|" * len(names))
    for t in tasks:
        ref = next(s["tasks"][t] for s in scores_by_run.values() if t in s["tasks"])
        if ref["kind"] == "mcq":
            gold = _dist(ref.get("answer_letters", {}))
            runs = [_dist(scores_by_run[n]["tasks"].get(t, {}).get("parsed_letters", {})) for n in names]
        else:
            gold = f"yes {ref.get('expected_yes_rate', 0):.2f}"
            runs = []
            for n in names:
                s = scores_by_run[n]["tasks"].get(t, {})
                yr = s.get("yes_rate")
                qa = s.get("question_accuracy")
                runs.append("-" if yr is None else f"yes {yr:.2f}; all points right {qa if qa is not None else 0:.2f}")
        md.append(f"| {t} | {gold} | " + " | ".join(runs) + " |")
    md += _human_md(human)
    md += _blind_md(scores_by_run)
    md += _comparison_md(comparison)
    md += _reference_md(scores_by_run, reference)
    md += _streaming_md(scores_by_run)
    flagged = [n for n in names if scores_by_run[n].get("flagged")]
    if flagged:
        md += ["", "## Flagged runs", ""]
        md += [f"- {n}: {scores_by_run[n]['flagged']}" for n in flagged]
    path_md = out_dir / "report.md"
    path_md.write_text("\n".join(md) + "\n", encoding="utf-8")
    path_json = out_dir / "scores.json"
    path_json.write_text(json.dumps(scores_by_run, indent=2) + "\n", encoding="utf-8")
    path_html = out_dir / "report.html"
    path_html.write_text(_html(scores_by_run, tasks, png, reference, comparison, human), encoding="utf-8")
    return [path_md, png, path_json, path_html]


REFERENCE_NOTE = ("Reference scoring: the StreamGaze reference's evaluate_results.py rules (docs/eval.md, \"Reference "
                  "scoring and results layout\"): the first standalone letter A-D of the upper-cased reply (the article "
                  "\"a\" reads as A), a proactive reply right when it contains \"YES\" (expected yes) or \"NO\" "
                  "(expected no), questions without a prediction left out of the denominator, the average over the "
                  "task files present. Each cell: ours / reference (reference - ours); n is the reference's count "
                  "of trials.")


HUMAN_HEAD = ["task", "answers", "accuracy (95 % CI)", "agreement on answers"]
HUMAN_NOTE = ("Human accuracy from the answers given in the review page's answer mode (latest answer per reviewer, "
              "question and test point), with clustered intervals (videos, then questions; all reviewers' answers to a "
              "question form one unit). Agreement between reviewers: Cohen's kappa for two reviewers (items both "
              "rated), Fleiss' kappa for more (items rated by at least two), with the raw share of agreeing pairs.")


def agreement_text(a: dict | None) -> str:
    """One agreement block (`streamgaze.review.data.agreement`) as text."""
    if not a:
        return "fewer than two reviewers"
    if not a["items"]:
        return f"{a['reviewers']} reviewers, no item rated by two"
    kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
    name = "Cohen's" if a["method"] == "cohen" else "Fleiss'"
    return f"{name} kappa {kappa}, raw agreement {a['agreement']:.3f} ({a['items']} items, {a['reviewers']} reviewers)"


def _human_rows(human: dict | None) -> tuple[list[list[str]], list[str]]:
    if not human or not human.get("tasks"):
        return [], []
    ag = human.get("agreement") or {}
    by_task = ag.get("answers_by_task") or {}
    rows = [[t, str(v["n"]), f"{v['accuracy']:.3f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]", agreement_text(by_task.get(t))]
            for t, v in human["tasks"].items()]
    rows.append(["overall (mean of tasks)", "", f"{human['overall']:.3f}{_ci_text(human.get('overall_ci95'))}", ""])
    notes = [f"Reviewers: {', '.join(human.get('reviewers') or []) or '-'}",
             f"Verification verdicts: {agreement_text(ag.get('verdicts'))}",
             f"Blind answers: {agreement_text(ag.get('answers'))}"]
    return rows, notes


def _human_md(human: dict | None) -> list[str]:
    rows, notes = _human_rows(human)
    if not rows:
        return []
    out = ["", "## Human baseline", "", HUMAN_NOTE, "", "| " + " | ".join(HUMAN_HEAD) + " |", "|" + "---|" * len(HUMAN_HEAD)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""] + [f"- {n}" for n in notes]


BLIND_HEAD = ["task", "n", "chance", "prior", "longest", "shortest", "flagged"]
BLIND_NOTE = ("Blind baselines answer without the video: prior picks the option whose text is most often right in the "
              "other videos' questions of the task (leave-one-video-out), longest / shortest the option with the most / "
              "fewest characters (proactive points: the answer most often expected at that point elsewhere). A task is "
              "flagged when a baseline's clustered 95 % interval lies entirely above chance (1 / options; proactive: the "
              "majority answer's share): its questions give the answer away in their text. Tasks with fewer than 10 "
              "questions are not flagged.")


def _blind_rows(scores_by_run: dict) -> list[list[str]]:
    """A row per task (from the first run that scored it): each blind baseline's accuracy and interval."""
    rows = []
    tasks = sorted({t for s in scores_by_run.values() for t in s["tasks"]})
    for t in tasks:
        ref = next(s["tasks"][t] for s in scores_by_run.values() if t in s["tasks"])
        blind = ref.get("blind") or {}
        if not blind:
            continue
        cells = ["-" if b not in blind else f"{blind[b]['accuracy']:.3f} [{blind[b]['ci95'][0]:.2f}, {blind[b]['ci95'][1]:.2f}]"
                 for b in ("prior", "longest", "shortest")]
        chance = ref.get("chance")
        rows.append([t, str(ref.get("n_questions", ref["n"])), "" if chance is None else f"{chance:.2f}", *cells,
                     ", ".join(ref.get("blind_above_chance") or []) or "-"])
    return rows


def _blind_md(scores_by_run: dict) -> list[str]:
    rows = _blind_rows(scores_by_run)
    if not rows:
        return []
    out = ["", "## Blind baselines", "", BLIND_NOTE, "", "| " + " | ".join(BLIND_HEAD) + " |", "|" + "---|" * len(BLIND_HEAD)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


COMPARISON_HEAD = ["task", "n", "first", "second", "difference (95 % CI)", "only first right", "only second right",
                   "p", "p (Holm)", "test"]


def _comparison_note(comparison: dict) -> str:
    first, second = comparison["runs"]
    return (f"The paired difference {second} - {first} on the items both runs answered (multiple-choice questions; "
            "proactive test points). Intervals are clustered bootstrap intervals (videos, then questions within them; "
            "a proactive question with its points is one unit). p: exact McNemar test on the discordant questions "
            "(multiple choice) or an exact sign-flip permutation test on the per-question differences (proactive); "
            "p (Holm) corrects for the number of tasks compared. Overall: the mean of the task differences.")


def _comparison_rows(comparison: dict | None) -> list[list[str]]:
    """A row per compared task, then overall (tasks without a shared answered item are left out)."""
    if not comparison or not comparison["overall"]["tasks"]:
        return []
    rows = []
    for t, v in comparison["tasks"].items():
        if not v["n"]:
            continue
        rows.append([t, str(v["n"]), f"{v['accuracy_1']:.3f}", f"{v['accuracy_2']:.3f}",
                     f"{v['diff']:+.3f} [{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}]", str(v["only_1_right"]),
                     str(v["only_2_right"]), f"{v['p']:.3g}", f"{v['p_holm']:.3g}", v["test"]])
    o = comparison["overall"]
    rows.append(["overall (mean of tasks)", "", "", "", f"{o['diff']:+.3f} [{o['ci95'][0]:+.2f}, {o['ci95'][1]:+.2f}]",
                 "", "", "", "", ""])
    return rows


def _comparison_md(comparison: dict | None) -> list[str]:
    rows = _comparison_rows(comparison)
    if not rows:
        return []
    first, second = comparison["runs"]
    out = ["", f"## Paired comparison: {second} - {first}", "", _comparison_note(comparison), "",
           "| " + " | ".join(COMPARISON_HEAD) + " |", "|" + "---|" * len(COMPARISON_HEAD)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _reference_rows(scores_by_run: dict, reference: dict | None) -> list[list[str]]:
    """The reference-scoring table: a row per task, then overall; per run "ours / reference (difference)" and
    the reference's n."""
    if not reference:
        return []
    names = list(scores_by_run)
    tasks = sorted({t for s in scores_by_run.values() for t in s["tasks"]})

    def cell(a, b):
        if a is None or b is None:
            return "-"
        return f"{a:.3f} / {b:.3f} ({b - a:+.3f})"

    rows = []
    for t in tasks:
        row = [t]
        for n in names:
            ours = scores_by_run[n]["tasks"].get(t) or {}
            theirs = (reference.get(n) or {}).get("tasks", {}).get(t) or {}
            row += [cell(ours.get("accuracy"), theirs.get("accuracy")), str(theirs.get("n", "-"))]
        rows.append(row)
    row = ["overall"]
    for n in names:
        row += [cell(scores_by_run[n]["overall"], (reference.get(n) or {}).get("overall")), ""]
    rows.append(row)
    return rows


def _reference_head(names: list[str]) -> list[str]:
    return ["task"] + [h for n in names for h in (f"{n}: ours / reference (diff)", f"{n}: n (reference)")]


def _reference_md(scores_by_run: dict, reference: dict | None) -> list[str]:
    rows = _reference_rows(scores_by_run, reference)
    if not rows:
        return []
    head = _reference_head(list(scores_by_run))
    out = ["", "## Reference scoring", "", REFERENCE_NOTE, "", "| " + " | ".join(head) + " |",
           "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _streaming_rows(scores_by_run: dict) -> list[list[str]]:
    rows = []
    for n, s in scores_by_run.items():
        st = s.get("streaming")
        if not st:
            continue
        for t, v in st["tasks"].items():
            delay = "-" if v["delay_mean_s"] is None else f"{v['delay_mean_s']:.2f} / {v['delay_median_s']:.2f}"
            rows.append([n, t, f"{st['poll_s']:g}", f"{st['tolerance_used_s']:g}", str(v["n"]), f"{v['accuracy']:.3f}",
                         str(v["hits"]), str(v["early"]), str(v["late"]), str(v["miss"]) + (f" ({v['incomplete']} incomplete)" if v["incomplete"] else ""),
                         delay])
    return rows


STREAM_HEAD = ["run", "task", "P (s)", "T' (s)", "questions", "accuracy (hits)", "hits", "early", "late", "miss",
               "reaction delay mean / median (s)"]
STREAM_NOTE = ("Streaming alert metric: each question is polled every P seconds from its asking time (W = P) until "
               "the first \"Yes\" (the alert a) or the horizon (300 s or the video's end). With onset o and "
               "T' = max(T, P): hit o <= a <= o + T', early a < o (false alarm), late a > o + T', miss no alert. "
               "The reaction delay a - o is over hits and late alerts.")


def _streaming_md(scores_by_run: dict) -> list[str]:
    rows = _streaming_rows(scores_by_run)
    if not rows:
        return []
    out = ["", "## Streaming alerts", "", STREAM_NOTE, "", "| " + " | ".join(STREAM_HEAD) + " |",
           "|" + "---|" * len(STREAM_HEAD)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.sum td{font-weight:bold;background:#fafafa}
.ci{color:#777;font-size:12px}.bar{display:inline-block;height:8px;background:#4a78c2;vertical-align:middle;margin-right:6px}
.flag{color:#a33}p.note{color:#555;font-size:13px;max-width:900px}img{max-width:100%}"""


def _html(scores_by_run: dict, tasks: list[str], png: Path, reference: dict | None = None,
          comparison: dict | None = None, human: dict | None = None) -> str:
    names = list(scores_by_run)
    e = lambda v: escape(str(v))  # noqa: E731
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>StreamGaze evaluation report</title>",
             f"<style>{_CSS}</style></head><body><h1>StreamGaze evaluation report</h1>"]
    parts.append("<table><tr><th>run</th><th>model</th><th>gaze prompt</th><th>prompt style</th><th>overall</th><th>complete</th></tr>")
    for n in names:
        s = scores_by_run[n]
        status = "yes" if s["complete"] else f"no ({s['tasks_scored']} tasks; missing: {', '.join(s['missing_tasks']) or '-'})"
        style = e(s.get("prompt_style") or "windowed") + (" <span class=\"flag\">(flagged)</span>" if s.get("flagged") else "")
        parts.append(f"<tr><td>{e(n)}</td><td>{e(s.get('model'))}</td><td>{e(s.get('gaze_prompt'))}</td><td>{style}</td>"
                     f"<td>{s['overall']:.3f}</td><td>{e(status)}</td></tr>")
    parts.append("</table>")
    if png.exists():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<img alt=\"accuracy per task\" src=\"data:image/png;base64,{data}\">")
    parts.append(f"<h2>{TABLE_TITLE}</h2><p class=\"note\">{escape(INTERVAL_NOTE)}</p>"
                 "<table><tr><th>task</th><th>family</th><th>n</th><th>chance</th>"
                 + "".join(f"<th>{e(n)}</th>" for n in names) + "</tr>")
    for row in _task_rows(scores_by_run, names, tasks):
        cells = ["<td>-</td>" if c is None else
                 f"<td><span class=\"bar\" style=\"width:{round(60 * c.value)}px\"></span>{c.accuracy} "
                 f"<span class=\"ci\">{c.interval}{c.missing}</span></td>" for c in row.cells]
        parts.append(f"<tr><td>{e(row.task)}</td><td>{e(row.family)}</td><td>{row.n}</td><td>{row.chance}</td>"
                     + "".join(cells) + "</tr>")
    fams = sorted({f for s in scores_by_run.values() for f in s["families"]})
    for f in fams:
        parts.append(f"<tr class=\"sum\"><td>family {e(f)}</td><td></td><td></td><td></td>" + "".join(
            f"<td>{scores_by_run[n]['families'][f]:.3f} <span class=\"ci\">{_ci_text(scores_by_run[n].get('families_ci95', {}).get(f))}</span></td>"
            if f in scores_by_run[n]["families"] else "<td>-</td>" for n in names) + "</tr>")
    parts.append("<tr class=\"sum\"><td>overall</td><td></td><td></td><td></td>"
                 + "".join(f"<td>{scores_by_run[n]['overall']:.3f} <span class=\"ci\">{_ci_text(scores_by_run[n].get('overall_ci95'))}</span></td>"
                           for n in names) + "</tr></table>")
    parts.append(f"<p class=\"note\">Chance is {CHANCE_MCQ} for the 4-option multiple-choice tasks; for the proactive tasks "
                 "the chance column is the majority-class rate of the test points (a micro average over points). Missing, "
                 "unparsed, refused and errored answers all count as wrong. The StreamGaze paper reports a human mean "
                 f"accuracy of {HUMAN} (black dotted line), on its own data and models: not comparable with these numbers.</p>")
    parts.append("<h2>Outcomes</h2><table><tr><th>run</th><th>task</th><th>correct</th><th>wrong</th><th>unparsed</th>"
                 "<th>refused</th><th>errors</th><th>missing</th></tr>")
    for n in names:
        for t, s in scores_by_run[n]["tasks"].items():
            parts.append(f"<tr><td>{e(n)}</td><td>{e(t)}</td><td>{s['correct']}</td><td>{s['wrong']}</td><td>{s['unparsed']}</td>"
                         f"<td>{s['refused']}</td><td>{s['errors']}</td><td>{s['missing']}</td></tr>")
    parts.append("</table>")
    rows, notes = _human_rows(human)
    if rows or notes:
        parts.append(f"<h2>Human baseline</h2><p class=\"note\">{e(HUMAN_NOTE)}</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in HUMAN_HEAD) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    rows = _blind_rows(scores_by_run)
    if rows:
        parts.append(f"<h2>Blind baselines</h2><p class=\"note\">{e(BLIND_NOTE)}</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in BLIND_HEAD) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    rows = _comparison_rows(comparison)
    if rows:
        parts.append(f"<h2>Paired comparison</h2><p class=\"note\">{e(_comparison_note(comparison))}</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in COMPARISON_HEAD) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    rows = _reference_rows(scores_by_run, reference)
    if rows:
        parts.append(f"<h2>Reference scoring</h2><p class=\"note\">{e(REFERENCE_NOTE)}</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in _reference_head(names)) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    rows = _streaming_rows(scores_by_run)
    if rows:
        parts.append(f"<h2>Streaming alerts</h2><p class=\"note\">{e(STREAM_NOTE)}</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in STREAM_HEAD) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    flagged = [n for n in names if scores_by_run[n].get("flagged")]
    if flagged:
        parts.append("<h2>Flagged runs</h2><ul>" + "".join(f"<li class=\"flag\">{e(n)}: {e(scores_by_run[n]['flagged'])}</li>" for n in flagged) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _dist(counts: dict) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    return " ".join(f"{k} {v / total:.2f}" for k, v in sorted(counts.items()))


def _chart(scores_by_run: dict, tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = list(scores_by_run)
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(tasks) + 2), 4), dpi=100)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(tasks))
    for i, n in enumerate(names):
        acc, lo, hi = [], [], []
        for t in tasks:
            s = scores_by_run[n]["tasks"].get(t)
            a = s["accuracy"] if s and s["accuracy"] is not None else 0.0
            acc.append(a)
            lo.append(a - (s["ci95"][0] if s else a))
            hi.append((s["ci95"][1] if s else a) - a)
        ax.bar(x + (i - (len(names) - 1) / 2) * width, acc, width, yerr=[lo, hi], capsize=2, label=n)
    ax.axhline(CHANCE_MCQ, color="grey", linestyle="--", linewidth=1, label=f"chance (MCQ) {CHANCE_MCQ}")
    ax.axhline(HUMAN, color="black", linestyle=":", linewidth=1, label=f"human (paper) {HUMAN}")
    ax.set_xticks(x)
    ax.set_xticklabels([_short(t) for t in tasks], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
