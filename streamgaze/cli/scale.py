"""Work split across machines: ``merge`` (the shards of ``--shard K/N`` runs put back together)."""
from __future__ import annotations

from pathlib import Path

import click

from streamgaze.merge import merge as run_merge


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="A B ...")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="PATH", help="The merged store file or folder (new).")
def merge(inputs: tuple[Path, ...], out: Path) -> None:
    """Merge the stores, question folders or eval run folders of a sharded run into one.

    Stores: objects and questions joined by shard, every other table equal or disjoint. Question folders: the
    folders of `generate --shard K/N`. Run folders: runs of the same settings and questions. See docs/scale.md."""
    click.echo(run_merge(list(inputs), out))
