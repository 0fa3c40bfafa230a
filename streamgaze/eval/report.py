"""The report: ``report.md`` (accuracy per task per run with 95 % intervals, families, overall, chance, outcome
kinds, answer-letter distributions) and ``scores.png`` (bars per task per run, chance and human lines)."""
from __future__ import annotations

import json
from pathlib import Path

CHANCE_MCQ = 0.25
HUMAN = 0.827  # the paper's human mean accuracy (context only; not comparable with demo numbers)


def _short(task: str) -> str:
    fam, _, rest = task.partition("_")
    words = rest.split("_")
    return f"{fam[:4]}:" + "".join(w[0] for w in words)


def write_report(scores_by_run: dict, out_dir) -> list[Path]:
    """Write ``report.md``, ``scores.png`` and ``scores.json`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
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
    md += ["", "## Accuracy per task (95 % bootstrap interval)", ""]
    md.append("| task | family | n | chance | " + " | ".join(names) + " |")
    md.append("|---|---|---|---|" + "---|" * len(names))
    for t in tasks:
        ref = next(s["tasks"][t] for s in scores_by_run.values() if t in s["tasks"])
        cells = []
        for n in names:
            s = scores_by_run[n]["tasks"].get(t)
            if s is None or s["accuracy"] is None:
                cells.append("-")
            else:
                miss = f", {s['missing']} missing" if s["missing"] else ""
                cells.append(f"{s['accuracy']:.3f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]{miss}")
        chance = ref.get("chance")
        md.append(f"| {t} | {ref['family']} | {ref['n']} | {'' if chance is None else f'{chance:.2f}'} | " + " | ".join(cells) + " |")
    fams = sorted({f for s in scores_by_run.values() for f in s["families"]})
    for f in fams:
        md.append(f"| **family {f}** | | | | " + " | ".join(
            f"{scores_by_run[n]['families'][f]:.3f}" if f in scores_by_run[n]["families"] else "-" for n in names) + " |")
    md.append("| **overall** | | | | " + " | ".join(f"**{scores_by_run[n]['overall']:.3f}**" for n in names) + " |")
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
    path_md = out_dir / "report.md"
    path_md.write_text("\n".join(md) + "\n", encoding="utf-8")
    path_json = out_dir / "scores.json"
    path_json.write_text(json.dumps(scores_by_run, indent=2) + "\n", encoding="utf-8")
    return [path_md, png, path_json]


def _dist(counts: dict) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    return " ".join(f"{k} {v / total:.2f}" for k, v in sorted(counts.items()))


def _chart(scores_by_run: dict, tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

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
