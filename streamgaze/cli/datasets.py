"""``streamgaze ingest-dataset``: a downloaded dataset folder into the store, one recording at a time."""
from __future__ import annotations

import time
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.cli.common import POSITIVE_INT, STORE
from streamgaze.errors import StreamGazeError, printable
from streamgaze.gaze.datasets.discovery import Discovery, discover
from streamgaze.gaze.datasets.recipes import get_recipe
from streamgaze.gaze.datasets.run import ingest_dataset as run_ingest_dataset
from streamgaze.store import check_store_path

#: Lines listed per discovery group before "... and N more".
LIST_LIMIT = 50


def _listing(title: str, items: list[str]) -> None:
    click.echo(f"{title}: {len(items)}")
    for item in items[:LIST_LIMIT]:
        click.echo(f"  {printable(item)}")
    if len(items) > LIST_LIMIT:
        click.echo(f"  ... and {len(items) - LIST_LIMIT} more")


def print_discovery(found: Discovery) -> None:
    root = found.root

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    click.echo(f"complete recordings: {len(found.complete)}")
    for rec in found.complete[:LIST_LIMIT]:
        files = ", ".join(f"{sf.rule.role} {rel(sf.path)}" for sf in rec.all_files() if not sf.rule.shared)
        click.echo(f"  {printable(rec.id)}: {printable(files)}")
    if len(found.complete) > LIST_LIMIT:
        click.echo(f"  ... and {len(found.complete) - LIST_LIMIT} more")
    groups: dict[str, list[str]] = {}
    for rec, missing in found.incomplete:
        have = sorted(r for r in rec.files if r in ("gaze", "video", "annotations"))
        label = f"{' + '.join(have) or 'extra files'} without {' and '.join(missing)}"
        files = ", ".join(rel(sf.path) for sf in rec.all_files() if not sf.rule.shared)
        groups.setdefault(label, []).append(f"{rec.id}: {files}")
    for label, items in sorted(groups.items()):
        _listing(label, items)
    if found.ambiguous:
        _listing("ambiguous recordings (skipped)", [f"{r.id}: {r.problem}" for r in found.ambiguous])
    _listing("files no rule matched", [rel(p) for p in found.unmatched])


@click.command("ingest-dataset")
@click.argument("name")
@click.argument("root", type=click.Path(path_type=Path))
@STORE
@click.option("--only", metavar="GLOB", help="Only recordings whose id matches this glob (e.g. 'OP01-*').")
@click.option("--jobs", default=1, show_default=True, type=POSITIVE_INT, help="Processes parsing recordings (one writer).")
@click.option("--dry-run", is_flag=True, help="Print what was found and stop; no recording is parsed, nothing is written.")
def ingest_dataset(name: str, root: Path, store: Path, only: str | None, jobs: int, dry_run: bool) -> None:
    """Ingest every recording of dataset NAME found under ROOT (`streamgaze formats` lists the datasets).

    Each recording goes in whole or not at all; a failed one is one line, the others go in, and the exit code is
    2. A rerun skips recordings whose source files are unchanged, re-ingests changed ones and retries failed ones.
    """
    recipe = get_recipe(name)
    check_store_path(store)
    found = discover(recipe, root, only=only)
    click.echo(f"{recipe.title} ({recipe.name}) under {root}")
    print_discovery(found)
    if dry_run:
        click.echo("dry run: nothing was written")
        return
    if not found.complete:
        raise StreamGazeError(f"{root}: no complete {recipe.name} recording found (see the lists above)")

    def report(outcome) -> None:
        if outcome.status == "failed":
            click.echo(f"failed {printable(outcome.video_id)}: {outcome.error}")

    start = time.perf_counter()
    outcomes = run_ingest_dataset(recipe, found, store, jobs=jobs, on_outcome=report)
    elapsed = time.perf_counter() - start
    tables.print_dataset_summary(outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "unchanged", "failed")}
    rows = sum(o.checks.get("n_gaze", 0) for o in outcomes if o.status == "ok")
    click.echo(f"ingested {counts['ok']}, unchanged {counts['unchanged']}, failed {counts['failed']} of "
               f"{len(outcomes)} recordings into {store}; {rows} gaze rows in {elapsed:.1f} s")
    if counts["failed"]:
        raise StreamGazeError(f"{counts['failed']} of {len(outcomes)} recordings failed (lines above); "
                              "the others are in the store; fix the files and run again to retry them")
