"""Every rich table the command line prints (the stage modules return data; the commands print it here)."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table


def _print(table: Table, console: Console | None = None) -> None:
    (console or Console()).print(table)


def _ci(ci) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def score_table(scores: dict) -> Table:
    """``streamgaze score`` / ``review-score``: accuracy (95% CI) per task, family and overall, one column per run."""
    names = list(scores)
    table = Table("task", "n", *names, title="accuracy (clustered 95% CI: videos, then questions)")
    tasks = sorted({t for s in scores.values() for t in s["tasks"]})
    for t in tasks:
        cells = []
        n = ""
        for name in names:
            s = scores[name]["tasks"].get(t)
            if s is None or s["accuracy"] is None:
                cells.append("-")
                continue
            n = str(s["n"])
            extra = f" ({s['missing']} missing)" if s["missing"] else ""
            cells.append(f"{s['accuracy']:.3f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]{extra}")
        table.add_row(t, n, *cells)
    fams = sorted({f for s in scores.values() for f in s["families"]})
    for f in fams:
        table.add_row(f"family: {f}", "", *(f"{scores[n]['families'].get(f, float('nan')):.3f}"
                                            + _ci(scores[n].get("families_ci95", {}).get(f)) for n in names))
    table.add_row("overall", "", *(
        f"{scores[n]['overall']:.3f}" + _ci(scores[n].get("overall_ci95"))
        + ("" if scores[n]["complete"] else f" incomplete ({scores[n]['tasks_scored']} tasks)")
        for n in names))
    return table


def print_scores(scores: dict) -> None:
    _print(score_table(scores))


def print_agreement(human: dict) -> None:
    """``score --store`` / ``review-score``: agreement between reviewers, one line each."""
    from streamgaze.eval.report import agreement_text

    ag = human.get("agreement") or {}
    click.echo(f"agreement on verification verdicts: {agreement_text(ag.get('verdicts'))}")
    click.echo(f"agreement on blind answers: {agreement_text(ag.get('answers'))}")


def comparison_table(c: dict) -> Table:
    """``streamgaze compare``: the paired difference per task and overall."""
    first, second = c["runs"]
    table = Table("task", "n", first, second, "difference (95% CI)", "p", "p (Holm)", title=f"{second} - {first}")
    for t, v in c["tasks"].items():
        if not v["n"]:
            table.add_row(t, "0", "-", "-", "no shared answers", "", "")
            continue
        table.add_row(t, str(v["n"]), f"{v['accuracy_1']:.3f}", f"{v['accuracy_2']:.3f}",
                      f"{v['diff']:+.3f} [{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}]", f"{v['p']:.3g}", f"{v['p_holm']:.3g}")
    o = c["overall"]
    if o["diff"] is not None:
        table.add_row("overall (mean of tasks)", "", "", "", f"{o['diff']:+.3f} [{o['ci95'][0]:+.2f}, {o['ci95'][1]:+.2f}]", "", "")
    return table


def print_comparison(c: dict) -> None:
    _print(comparison_table(c))


def generation_table(report: dict) -> Table:
    """``streamgaze generate``: questions and skips per task."""
    table = Table("task", "family", "questions", "skipped (by reason)")
    for task_id, r in report["tasks"].items():
        skipped = ", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "-"
        table.add_row(task_id, r["family"], str(r["questions"]), skipped)
    return table


def answer_bias_table(report: dict) -> Table:
    """``streamgaze generate``: each task's answer letters and the blind baselines' accuracy."""
    table = Table("task", "answer letters", "prior", "longest", "shortest", title="answers and blind baselines")
    for task_id, r in report["tasks"].items():
        letters = " ".join(f"{k} {v}" for k, v in r.get("answer_letters", {}).items()) or "-"
        blind = r.get("blind_baselines") or {}
        table.add_row(task_id, letters, *("-" if blind.get(b) is None else f"{blind[b]:.2f}" for b in ("prior", "longest", "shortest")))
    return table


def print_generation_report(report: dict) -> None:
    _print(generation_table(report))
    _print(answer_bias_table(report))
    for task_id, problem in report.get("broken_tasks", {}).items():
        click.echo(f"left out task {task_id}: {problem}", err=True)


def sql_table(columns: list[str], rows: list) -> Table:
    """``streamgaze sql``: the query's rows (NULL shown empty)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def print_sql(columns: list[str], rows: list) -> None:
    _print(sql_table(columns, rows))


def demo_results_table(s: dict) -> Table:
    """``streamgaze demo``: accuracy of the built-in baselines per task."""
    runs = s["scores"]
    table = Table(title="Results (accuracy of the built-in baselines)")
    table.add_column("task", no_wrap=True)
    table.add_column("questions", justify="right")
    for model in runs:
        table.add_column(model, justify="right")
    for task_id, n in s["questions"].items():
        accs = []
        for run in runs.values():
            t = run["tasks"].get(task_id)
            accs.append("-" if not t or t.get("accuracy") is None else f"{t['accuracy']:.3f}")
        table.add_row(task_id, str(n), *accs)
    table.add_row("overall (mean of tasks)", str(sum(s["questions"].values())),
                  *[f"{r['overall']:.3f}" + ("" if r["complete"] else " (incomplete)") for r in runs.values()])
    return table


def print_demo_summary(s: dict, console: Console | None = None) -> None:
    """The end of ``streamgaze demo``: the gaze check, the results table, timings and what was written."""
    console = console or Console()
    g = s["gaze_check"]
    console.print(
        f"\nepisodes: {g['episodes']} detected vs {g['true_dwells']} true dwells "
        f"(precision {g['precision']:.2f}, recall {g['recall']:.2f}, F1 {g['f1']:.2f}); {g['labelled']} labelled"
    )
    console.print(demo_results_table(s))
    console.print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["timings"].items()))
    console.print("\n[bold]Wrote[/bold]")
    for label in ("store", "world", "qa", "results"):
        console.print(f"  {label:<8} {s[label]}")
    for p in list(s["overlays"]) + list(s["reports"]):
        console.print(f"  {'':<8} {p}")
    console.print(f'\nTry: streamgaze sql "select episode_id, name, role from objects limit 10" --store {s["store"]}')


PLUGIN_COLUMNS = ("kind", "name", "package", "version", "entry point")


def plugin_lines(rows: list[dict]) -> list[str]:
    """``streamgaze plugins list``: aligned plain columns (never cut short, whatever the terminal width), one line
    per registered object; a broken plugin's line ends with ``BROKEN: <problem>``."""
    cells = [(r["kind"], r["name"], r["package"], r["version"], r["entry_point"],
              "" if r["status"] == "ok" else f"BROKEN: {r['problem']}") for r in rows]
    head = (*(c.upper() for c in PLUGIN_COLUMNS), "")
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(PLUGIN_COLUMNS))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(c, widths)).rstrip() + (f"  {c[-1]}" if c[-1] else "")
            for c in [head, *cells]]


def audit_table(summary: dict) -> Table:
    """``streamgaze audit questions``: per task file, questions, faulty and unverifiable, each by reason."""
    table = Table(title="audit of released questions")
    for name in ("task", "questions", "faulty", "unverifiable", "faults (by reason)", "unverifiable (by reason)"):
        table.add_column(name, overflow="fold")  # task ids and reasons in full, folded in a narrow terminal
    rows = [*summary["tasks"].items(), ("total", summary["total"])]
    for task, r in rows:
        table.add_row(task, str(r["questions"]), str(r["faulty"]), str(r["unverifiable"]),
                      ", ".join(f"{k} {v}" for k, v in r["reasons"].items()) or "-",
                      ", ".join(f"{k} {v}" for k, v in r["unverifiable_reasons"].items()) or "-")
    return table


def print_audit(summary: dict) -> None:
    _print(audit_table(summary))
    if "faults_file" in summary:
        click.echo(f"faults: {summary['faults_file']}")
    regen = summary.get("regenerated")
    if regen:
        click.echo(f"regenerated: {sum(regen['questions'].values())} questions in {regen['qa_dir']}; "
                   f"{regen['mapped']} of {regen['released']} released questions mapped ({regen['mapping']})")


#: ``ingest-dataset``: above this many recordings the summary lists only the failed and warned ones.
DATASET_TABLE_ROWS = 40


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def dataset_table(outcomes: list) -> Table:
    """``streamgaze ingest-dataset``: one row per recording (status, gaze, video, coverage, warnings or error)."""
    rows = outcomes if len(outcomes) <= DATASET_TABLE_ROWS else [o for o in outcomes if o.error or o.warnings]
    title = "recordings" if rows is outcomes else f"recordings with a problem ({len(rows)} of {len(outcomes)})"
    table = Table("recording", "status", "gaze rows", "gaze Hz", "video fps", "video s", "coverage", "invalid",
                  "outside", "warnings / error", title=title)
    for o in rows:
        m = o.checks or {}
        table.add_row(o.video_id, o.status, _num(m.get("n_gaze"), "d"), _num(m.get("gaze_rate_hz"), ".1f"),
                      _num(m.get("video_fps"), ".2f"), _num(m.get("video_duration_s"), ".1f"),
                      _num(m.get("coverage"), ".0%"), _num(m.get("invalid_share"), ".1%"),
                      _num(m.get("outside_share"), ".1%"), o.error or "; ".join(o.warnings))
    return table


def print_dataset_summary(outcomes: list) -> None:
    _print(dataset_table(outcomes), Console(width=200))
