"""Options and parsing shared by the command modules."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from streamgaze.shards import Shard


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also rejects ``nan``, ``inf`` and ``-inf`` (click lets NaN through every bound):
    a bad value is one usage error naming the option, exit code 2, before anything runs."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number in the range {self._describe_range()}.", param, ctx)
        return super().convert(number, param, ctx)


def finite_float(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> FiniteFloatRange:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``); no clamping."""
    return FiniteFloatRange(low, high, min_open=low_open)


#: counts of things (requests in flight, frames): an integer >= 1, no clamping
POSITIVE_INT = click.IntRange(1)
#: seeds of the random draws
SEED = click.IntRange(0, 2**32 - 1)
#: a TCP port (0: any free one)
PORT = click.IntRange(0, 65535)

STORE = click.option("--store", "store", required=True, type=click.Path(path_type=Path), help="The DuckDB store file.")


def parse_params(pairs: tuple[str, ...]) -> dict:
    """``k=v`` pairs; values parsed as JSON where they can be (numbers, booleans), else kept as text."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not k=v", param_hint="--param")
        k, v = pair.split("=", 1)
        try:
            value = json.loads(v)
        except ValueError:
            value = v
        if isinstance(value, float) and not math.isfinite(value):
            raise click.BadParameter(f"{pair!r}: {v} is not a finite number", param_hint="--param")
        out[k.strip()] = value
    return out


class ShardType(click.ParamType):
    """``K/N``: shard K of N (1 <= K <= N; `streamgaze.shards.Shard`). ``3/2``, ``0/2``, ``a/b``: one usage error
    naming the option, exit code 2."""

    name = "K/N"

    def convert(self, value, param, ctx):
        if isinstance(value, Shard):
            return value
        try:
            return Shard.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SHARD = click.option("--shard", type=ShardType(), metavar="K/N",
                     help="Only the videos of shard K of N (by a stable hash of the video id); `streamgaze merge` joins the shards.")


def batch_options(f):
    """``--batch-write DIR``, ``--batch-images``, ``--batch-read FILE`` (repeatable; a folder: its result files)
    and ``--batch``, passed to the command as one ``batch`` dict (empty when none is given)."""
    options = [
        click.option("--batch-write", "batch_write", type=click.Path(path_type=Path), metavar="DIR",
                     help="Write the requests as OpenAI Batch files in DIR (split at 50,000 requests or 190 MB) and "
                          "send nothing."),
        click.option("--batch-images", default="inline", show_default=True, type=click.Choice(["inline", "file"]),
                     help="With --batch-write: frames inline as base64, or written once as JPEG files referred to "
                          "by file:// URL (vLLM with --allowed-local-media-path)."),
        click.option("--batch-read", "batch_read", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
                     help="Read Batch result files (repeatable; a folder: every .jsonl in it but requests-*)."),
        click.option("--batch", "batch_submit", is_flag=True,
                     help="Submit through the endpoint's Files and Batches API, poll, and read the results; a rerun "
                          "resumes the batches it submitted."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def batch_settings(batch_write, batch_images, batch_read, batch_submit) -> dict:
    """The batch flags as keyword arguments (``{}``: no batch flag given); a folder given to --batch-read stands
    for its result files."""
    given = [name for name, on in (("--batch-write", batch_write), ("--batch-read", batch_read),
                                   ("--batch", batch_submit)) if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} go one at a time")
    if batch_images != "inline" and batch_write is None:
        raise click.UsageError("--batch-images file goes with --batch-write")
    if not given:
        return {}
    files: list[Path] = []
    for p in batch_read:
        if p.is_dir():
            files += sorted(f for f in p.glob("*.jsonl") if not f.name.startswith("requests-"))
        else:
            files.append(p)
    if batch_read and not files:
        raise click.BadParameter("no result files (*.jsonl) in the folders given", param_hint="--batch-read")
    return {"write_dir": batch_write, "read_files": files, "submit": batch_submit, "images": batch_images}
