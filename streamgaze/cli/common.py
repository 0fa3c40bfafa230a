"""Options and parsing shared by the command modules."""
from __future__ import annotations

import json
from pathlib import Path

import click

STORE = click.option("--store", "store", required=True, type=click.Path(path_type=Path), help="The DuckDB store file.")


def parse_params(pairs: tuple[str, ...]) -> dict:
    """``k=v`` pairs; values parsed as JSON where they can be (numbers, booleans), else kept as text."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not k=v", param_hint="--param")
        k, v = pair.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v
    return out
