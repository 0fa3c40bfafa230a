"""The ``streamgaze`` command line: one click group, a thin wrapper per pipeline stage.

Every command turns bad input into one line naming the file and the problem, with exit code 2
(`streamgaze.errors.StreamGazeError`); stage modules are imported lazily so ``--help`` stays fast.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from streamgaze import __version__

STORE = click.option("--store", "store", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The DuckDB store file.")


def _params(pairs: tuple[str, ...]) -> dict:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamgaze")
def cli() -> None:
    """Turn egocentric video with eye tracking into gaze QA benchmarks, and evaluate models on them.

    Pipeline: ingest -> fixations -> objects -> generate -> eval -> score. Try `streamgaze demo`.
    """


@cli.command()
@click.option("--out", "out_dir", default="streamgaze-demo", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for everything the demo writes.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic world and of question drawing.")
@click.option("--minutes", default=3.0, show_default=True, type=click.FloatRange(0.5, 10), help="Length of the synthetic recording.")
def demo(out_dir: Path, seed: int, minutes: float) -> None:
    """Make the synthetic demo world and run the whole pipeline on it."""
    from streamgaze.demo.run import run_demo

    run_demo(out_dir, seed=seed, minutes=minutes)


@cli.command()
@click.argument("fmt", metavar="FORMAT")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@STORE
@click.option("--video", type=click.Path(path_type=Path), help="The scene video the gaze belongs to.")
@click.option("--video-id", help="Id of the video in the store (default: from the file names).")
@click.option("--dataset", help="Dataset name stored with the video (default: the format).")
def ingest(fmt: str, paths: tuple[Path, ...], store: Path, video: Path | None, video_id: str | None, dataset: str | None) -> None:
    """Load gaze (and video metadata, action labels, ...) in FORMAT into the store.

    `streamgaze ingest --help` lists nothing more; `streamgaze formats` lists every FORMAT.
    """
    from streamgaze.gaze.ingest import get_loader, ingest as run

    loader = get_loader(fmt)
    if hasattr(loader, "ingest_store"):  # a format holding several videos (streamgaze-metadata) writes them all at once
        click.echo(loader.ingest_store(store, list(paths), dataset=dataset))
        return
    summary = run(store, fmt, list(paths), video=video, video_id=video_id, dataset=dataset)
    click.echo(summary)


@cli.command()
def formats() -> None:
    """List every ingest FORMAT and the plugin that provides it."""
    from streamgaze.plugins.manager import registry

    for name, entry in registry("gaze_loaders").items():
        doc = (getattr(entry.obj, "__doc__", "") or "").strip().splitlines()
        click.echo(f"{name:<24} {entry.source.label:<32} {doc[0] if doc else ''}")


@cli.command()
@STORE
@click.option("--detector", default="ivt", show_default=True, help="Fixation detector plugin.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Detector or episode-builder parameter.")
def fixations(store: Path, detector: str, params: tuple[str, ...]) -> None:
    """Detect fixations and merge them into dwell episodes."""
    from streamgaze.gaze.fixations import run_fixations

    click.echo(run_fixations(store, detector=detector, params=_params(params)))


@cli.command()
@STORE
@click.option("--labeller", default="annotation", show_default=True, help="Object labeller plugin.")
@click.option("--truth", type=click.Path(path_type=Path), help="Annotation file (truth.json) for the annotation labeller.")
@click.option("--base-url", help="OpenAI-compatible endpoint (openai labeller).")
@click.option("--model", help="Model name (openai labeller).")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight (openai labeller).")
@click.option("--api-key", help="API key (openai labeller; default: $OPENAI_API_KEY). Never written anywhere.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Labeller parameter.")
def objects(store: Path, labeller: str, truth: Path | None, base_url: str | None, model: str | None, concurrency: int, api_key: str | None, params: tuple[str, ...]) -> None:
    """Name the gazed object of each episode, the other objects inside the field of view, and those outside it."""
    from streamgaze.objects.stage import run_objects

    options = _params(params)
    given = {"truth": truth, "base_url": base_url, "model": model, "api_key": api_key}
    options.update({k: v for k, v in given.items() if v is not None})
    options["concurrency"] = concurrency
    click.echo(run_objects(store, labeller=labeller, options=options))


@cli.command()
@STORE
@click.option("--tasks", default="all", show_default=True, help="`all` or comma-separated task ids.")
@click.option("--out", "out_dir", default="qa", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Global seed of every draw.")
@click.option("--specs", "spec_paths", multiple=True, type=click.Path(exists=True, path_type=Path), help="Extra spec file or folder (before packaging a task).")
@click.option("--drop-invalid", is_flag=True, help="Leave out questions a reviewer marked invalid in `streamgaze review` (reason `reviewed_invalid`).")
def generate(store: Path, tasks: str, out_dir: Path, seed: int, spec_paths: tuple[Path, ...], drop_invalid: bool) -> None:
    """Run the task specs over the store: writes OUT/<task_id>.jsonl and fills qa_items."""
    from streamgaze.review.data import invalid_question_ids
    from streamgaze.tasks.generate import print_report, run_generate

    only = None if tasks == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    report = run_generate(store, out_dir, only=only, seed=seed, extra_specs=list(spec_paths),
                          drop_invalid=invalid_question_ids if drop_invalid else None)
    print_report(report)


@cli.command("eval")
@click.option("--qa", "qa_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of <task_id>.jsonl question files (or released StreamGaze <task_id>.json files).")
@click.option("--model", required=True, help="`random`, `first-option`, `openai:<model>` or `text-only:<model>` (no frames).")
@click.option("--base-url", help="OpenAI-compatible endpoint for openai:<model> (vLLM, Ollama, ...).")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight.")
@click.option("--gaze-prompt", default="none", show_default=True, type=click.Choice(["none", "overlay", "salience", "scanpath-text"]))
@click.option("--prompt-style", default="windowed", show_default=True, type=click.Choice(["windowed", "reference"]), help="`reference`: the reference harness's texts, for parity runs (flagged).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder (resumable).")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), help="Store with the videos and gaze (default: QA/../store.duckdb); when given, predictions are also written to its predictions table.")
@click.option("--seed", default=0, show_default=True)
@click.option("--frames", default=16, show_default=True, help="Frames sampled per clip.")
@click.option("--streaming", is_flag=True, help="Run the streaming alert metric on the proactive questions instead (poll every --poll-s).")
@click.option("--poll-s", default=1.0, show_default=True, type=click.FloatRange(0.05, None, min_open=False), help="Streaming: poll interval P (and window W).")
@click.option("--tolerance-s", default=3.0, show_default=True, type=click.FloatRange(0, None), help="Streaming: an alert within T' = max(T, P) of the onset is a hit.")
def eval_cmd(qa_dir: Path, model: str, base_url: str | None, concurrency: int, gaze_prompt: str, prompt_style: str, out_dir: Path,
             store: Path | None, seed: int, frames: int, streaming: bool, poll_s: float, tolerance_s: float) -> None:
    """Ask a model every question; a rerun appends only what is missing."""
    from streamgaze.eval.runner import run_eval

    click.echo(run_eval(qa_dir, model, out_dir, base_url=base_url, concurrency=concurrency, gaze_prompt=gaze_prompt, store=store,
                        seed=seed, frames=frames, prompt_style=prompt_style, streaming=streaming, poll_s=poll_s, tolerance_s=tolerance_s))


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), help="Where report.md goes (default: the first run folder).")
@click.option("--store", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Store whose reviews add human accuracy per task beside the models.")
def score(runs: tuple[Path, ...], as_json: bool, report_dir: Path | None, store: Path | None) -> None:
    """Accuracy per task, family and overall, with bootstrap 95% intervals; writes report.md, report.html and
    scores.png. Several run folders are shown side by side."""
    from streamgaze.eval.score import score_command

    score_command(list(runs), as_json=as_json, report_dir=report_dir, store=store)


@cli.command()
@STORE
@click.option("--qa", "qa_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of <task_id>.jsonl question files.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback: only this machine).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--reviewer", help="Name stored with each verdict and answer (default: $USER; the page can change it).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for rendered overlay clips (default: a temp folder).")
def review(store: Path, qa_dir: Path, host: str, port: int, reviewer: str | None, cache_dir: Path | None) -> None:
    """Serve a page to verify questions (with the gaze-overlay clip and the evidence) and to answer them blind;
    verdicts and answers go into the store's reviews table."""
    from streamgaze.review.server import serve

    serve(store, qa_dir, host=host, port=port, reviewer=reviewer, cache_dir=cache_dir)


@cli.command("review-score")
@STORE
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
def review_score(store: Path, as_json: bool) -> None:
    """Human accuracy per task from the answers given in `streamgaze review` (answer mode)."""
    from streamgaze.eval.score import _print_table
    from streamgaze.review.data import human_scores

    scores = human_scores(store)
    if as_json:
        click.echo(json.dumps(scores))
    else:
        _print_table({"human": scores})


@cli.command()
@click.argument("query")
@STORE
@click.option("--json", "as_json", is_flag=True, help="Rows as JSON lines.")
def sql(query: str, store: Path, as_json: bool) -> None:
    """Run one read-only SQL query over the store."""
    from streamgaze.store import run_readonly_sql

    columns, rows = run_readonly_sql(store, query)
    if as_json:
        for row in rows:
            click.echo(json.dumps(dict(zip(columns, row)), default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


@cli.group()
def tasks() -> None:
    """List registered tasks, or scaffold a new one."""


@tasks.command("list")
def tasks_list() -> None:
    """Every registered task with the plugin that provides it."""
    from streamgaze.plugins.manager import get_plugins
    from streamgaze.tasks.spec import load_task_specs

    get_plugins().check_all()
    broken: dict[str, str] = {}
    for task in load_task_specs(on_broken=broken.__setitem__):
        click.echo(f"{task.id:<42} {task.spec.family:<9} {task.source.label}")
    for task_id, problem in broken.items():
        click.echo(f"{'(broken task) ' + task_id:<42} {'':<9} {problem}")
    for name, problem in get_plugins().broken.items():
        click.echo(f"{'(broken plugin) ' + name:<42} {'':<9} {problem}")


@tasks.command("new")
@click.argument("name")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write the new task's files into.")
def tasks_new(name: str, out_dir: Path) -> None:
    """Scaffold task NAME: spec YAML, Jinja template, hook module and a test, ready for `generate --specs`."""
    from streamgaze.scaffold import scaffold_task

    for path in scaffold_task(name, out_dir):
        click.echo(path)


@cli.group()
def export() -> None:
    """Write question files in other benchmarks' formats."""


@export.command("streamgaze-json")
@click.option("--qa", "qa_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of <task_id>.jsonl question files.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for <task_id>.json in the released shape.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), help="Store with videos and episodes (default: QA/../store.duckdb).")
def export_streamgaze_json_cmd(qa_dir: Path, out_dir: Path, store: Path | None) -> None:
    """One JSON file per task in the released StreamGaze shape (MM:SS times, lettered options, test_info)."""
    from streamgaze.tasks.export import export_streamgaze_json

    for task_id, r in export_streamgaze_json(qa_dir, out_dir, store=store).items():
        extra = f", {r['changed_points']} test points changed type at whole seconds" if task_id.startswith("proactive_") else ""
        click.echo(f"{out_dir / (task_id + '.json')}: {r['items']} items{extra}")


@cli.group()
def render() -> None:
    """Render videos with gaze drawn on them."""


@render.command("overlay")
@STORE
@click.option("--video-id", help="Video to render (default: every video).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--scale", default=0.5, show_default=True, type=click.FloatRange(0.1, 1.0), help="Output size as a fraction of the video's (the encoder dominates the time; 1.0 is about 2.5x slower).")
@click.option("--fps", "out_fps", type=click.FloatRange(0.5, None), help="Output frame rate (default: the video's); lower keeps every k-th frame and encodes faster.")
def render_overlay_cmd(store: Path, video_id: str | None, out_dir: Path, scale: float, out_fps: float | None) -> None:
    """Write the scene video with the gaze dot and the FOV circle drawn on every frame (the same drawing as
    `eval --gaze-prompt overlay`)."""
    from streamgaze.gaze.overlay import render_overlay

    for path in render_overlay(store, out_dir, video_id=video_id, scale=scale, fps=out_fps):
        click.echo(path)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
