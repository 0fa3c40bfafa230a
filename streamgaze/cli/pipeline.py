"""The pipeline stages: ``demo``, ``ingest``, ``fixations``, ``objects``, ``generate``."""
from __future__ import annotations

from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.cli.common import POSITIVE_INT, SEED, SHARD, STORE, batch_options, batch_settings, finite_float, parse_params
from streamgaze.demo.run import run_demo
from streamgaze.gaze.fixations import run_fixations
from streamgaze.gaze.ingest import get_loader
from streamgaze.gaze.ingest import ingest as run_ingest
from streamgaze.objects.stage import run_objects
from streamgaze.review.data import invalid_question_ids
from streamgaze.tasks.generate import run_generate


@click.command()
@click.option("--out", "out_dir", default="streamgaze-demo", show_default=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Folder for everything the demo writes.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the synthetic world and of question drawing.")
@click.option("--minutes", default=3.0, show_default=True, type=finite_float(0.5, 10), help="Length of the synthetic recording.")
def demo(out_dir: Path, seed: int, minutes: float) -> None:
    """Make the synthetic demo world and run the whole pipeline on it."""
    tables.print_demo_summary(run_demo(out_dir, seed=seed, minutes=minutes))


@click.command()
@click.argument("fmt", metavar="FORMAT")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@STORE
@click.option("--video", type=click.Path(path_type=Path), help="The scene video the gaze belongs to.")
@click.option("--video-id", help="Id of the video in the store (default: from the file names).")
@click.option("--dataset", help="Dataset name stored with the video (default: the format).")
@click.option("--allow-unknown-videos", is_flag=True, help="Store actions (or rows a video_id column assigns) for videos the store does not hold yet; by default they are refused.")
def ingest(fmt: str, paths: tuple[Path, ...], store: Path, video: Path | None, video_id: str | None, dataset: str | None,
           allow_unknown_videos: bool) -> None:
    """Load gaze (and video metadata, action labels, ...) in FORMAT into the store.

    `streamgaze ingest --help` lists nothing more; `streamgaze formats` lists every FORMAT.
    """
    loader = get_loader(fmt)
    if hasattr(loader, "ingest_store"):  # a format holding several videos (streamgaze-metadata) writes them all at once
        click.echo(loader.ingest_store(store, list(paths), dataset=dataset))
        return
    click.echo(run_ingest(store, fmt, list(paths), video=video, video_id=video_id, dataset=dataset,
                          allow_unknown_videos=allow_unknown_videos))


@click.command()
@STORE
@click.option("--detector", default="ivt", show_default=True, help="Fixation detector plugin.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Detector or episode-builder parameter.")
@click.option("--device", type=click.Choice(["auto", "head-mounted", "screen"]), default="auto", show_default=True,
              help="Device class whose detector defaults apply; auto decides per video from the stored dataset, "
                   "geometry and gaze rate. --param values win over them.")
def fixations(store: Path, detector: str, params: tuple[str, ...], device: str) -> None:
    """Detect fixations and merge them into dwell episodes."""
    click.echo(run_fixations(store, detector=detector, params=parse_params(params), device=device))


@click.command()
@STORE
@click.option("--labeller", default="annotation", show_default=True, help="Object labeller plugin.")
@click.option("--truth", type=click.Path(path_type=Path), help="Annotation file (truth.json) for the annotation labeller.")
@click.option("--base-url", "base_urls", multiple=True, metavar="URL", help="OpenAI-compatible endpoint (openai labeller); repeat it for several: each request goes to the least busy.")
@click.option("--model", help="Model name (openai labeller).")
@click.option("--concurrency", default=8, show_default=True, type=POSITIVE_INT, help="Requests in flight (openai labeller).")
@click.option("--api-key", help="API key (openai labeller; default: $OPENAI_API_KEY). Never written anywhere.")
@click.option("--retry-budget", "retry_budget", type=finite_float(0), metavar="SECONDS", help="Retry a failed request until this much time has passed (openai labeller; default 600).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Labeller parameter.")
@SHARD
@batch_options
def objects(store: Path, labeller: str, truth: Path | None, base_urls: tuple[str, ...], model: str | None, concurrency: int, api_key: str | None, retry_budget: float | None, params: tuple[str, ...],
            shard=None, **batch) -> None:
    """Name the gazed object of each episode, the other objects inside the field of view, and those outside it."""
    options = parse_params(params)
    base_url = (base_urls[0] if len(base_urls) == 1 else list(base_urls)) if base_urls else None
    given = {"truth": truth, "base_url": base_url, "model": model, "api_key": api_key, "retry_budget_s": retry_budget}
    options.update({k: v for k, v in given.items() if v is not None})
    options["concurrency"] = concurrency
    batch = batch_settings(**batch)
    if batch:
        from streamgaze.objects.batch import run_objects_batch

        click.echo(run_objects_batch(store, labeller, options, shard=shard, **batch))
        return
    click.echo(run_objects(store, labeller=labeller, options=options, shard=shard))


@click.command()
@STORE
@click.option("--tasks", default="all", show_default=True, help="`all` or comma-separated task ids.")
@click.option("--out", "out_dir", default="qa", show_default=True, type=click.Path(path_type=Path), metavar="DIRECTORY")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Global seed of every draw.")
@click.option("--specs", "spec_paths", multiple=True, type=click.Path(exists=True, path_type=Path), help="Extra spec file or folder (before packaging a task).")
@click.option("--drop-invalid", is_flag=True, help="Leave out questions a reviewer marked invalid in `streamgaze review` (reason `reviewed_invalid`).")
@SHARD
def generate(store: Path, tasks: str, out_dir: Path, seed: int, spec_paths: tuple[Path, ...], drop_invalid: bool, shard=None) -> None:
    """Run the task specs over the store: writes OUT/<task_id>.jsonl and fills qa_items."""
    only = None if tasks == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    report = run_generate(store, out_dir, only=only, seed=seed, extra_specs=list(spec_paths),
                          drop_invalid=invalid_question_ids if drop_invalid else None, shard=shard)
    tables.print_generation_report(report)
