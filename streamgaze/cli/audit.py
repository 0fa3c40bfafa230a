"""``streamgaze audit``: checks of what the benchmark and its runs claim (``audit run``) and of released questions
against the metadata they were made from (``audit questions``)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.cli.common import STORE
from streamgaze.eval.audit_questions import audit_questions, check_audit_outputs, regenerate, write_faults
from streamgaze.eval.audit_run import audit_run, verdict


@click.group()
def audit() -> None:
    """Check a run for information from after the question time, or released questions against their metadata."""


@audit.command("run")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print {checked, leaks, unverified} as one JSON object.")
def audit_run_cmd(run_dir: Path, as_json: bool) -> None:
    """Every request of a run: frames and gaze at or before its question's time, the clip the question's.

    Exit code 1 when any leak is found."""
    result = audit_run(run_dir)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        for leak in result["leaks"]:
            click.echo(f"{leak['question_id']}\tpoint {leak['point_idx']}\t{leak['reason']}")
        for reason, n in result["unverified"].items():
            click.echo(f"unverified: {n} x {reason}")
        click.echo(verdict(result))
    if result["leaks"]:
        raise click.exceptions.Exit(1)


@audit.command("questions")
@click.argument("qa_dir", type=click.Path(path_type=Path), metavar="QA_DIR")
@STORE
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), metavar="DIRECTORY", help="Write DIRECTORY/faults.jsonl, one line per faulty question.")
@click.option("--regenerate", "regen_dir", type=click.Path(path_type=Path), metavar="OUT", help="Write the corrected benchmark from the same metadata (OUT/qa, OUT/questions) and OUT/mapping.jsonl.")
def audit_questions_cmd(qa_dir: Path, store: Path, as_json: bool, out_dir: Path | None, regen_dir: Path | None) -> None:
    """Check released StreamGaze questions (QA_DIR/<task_id>.json) against the episode metadata in the store.

    Exit code 0 whenever the audit ran, faults or not (they are findings); 2 for bad input."""
    result = audit_questions(qa_dir, store)
    check_audit_outputs(out_dir, regen_dir)
    summary = result.summary()
    if out_dir is not None:
        summary["faults_file"] = str(write_faults(result, out_dir))
    if regen_dir is not None:
        summary["regenerated"] = regenerate(store, regen_dir, result)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    tables.print_audit(summary)
