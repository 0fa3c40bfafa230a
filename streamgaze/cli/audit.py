"""``streamgaze audit``: checks of what the benchmark and its runs claim (``audit run``)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from streamgaze.eval.audit_run import audit_run, verdict


@click.group()
def audit() -> None:
    """Check a run (or released questions) for information from after the question time."""


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
