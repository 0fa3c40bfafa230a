"""Looking at and converting what the pipeline made: ``sql``, ``formats``, ``render``, ``export``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.cli.common import STORE, finite_float
from streamgaze.eval.reference_results import export_reference_results
from streamgaze.eval.samples import export_hf_dataset
from streamgaze.gaze.datasets.recipes import load_recipe, recipe_paths
from streamgaze.gaze.overlay import render_overlay
from streamgaze.plugins.manager import registry
from streamgaze.errors import StreamGazeError
from streamgaze.parquet import export_parquet, run_parquet_sql
from streamgaze.store import run_readonly_sql
from streamgaze.tasks.export import export_streamgaze_json


@click.command()
@click.argument("query")
@click.option("--store", type=click.Path(path_type=Path), help="The DuckDB store file.")
@click.option("--parquet", "parquet_dir", type=click.Path(path_type=Path), metavar="DIRECTORY", help="Query a `streamgaze export parquet` folder instead of a store.")
@click.option("--json", "as_json", is_flag=True, help="Rows as JSON lines.")
def sql(query: str, store: Path | None, parquet_dir: Path | None, as_json: bool) -> None:
    """Run one read-only SQL query over the store (or over its Parquet export)."""
    if (store is None) == (parquet_dir is None):
        raise StreamGazeError("give --store STORE or --parquet DIRECTORY (one of them)")
    columns, rows = run_readonly_sql(store, query) if store is not None else run_parquet_sql(parquet_dir, query)
    if as_json:
        for row in rows:
            click.echo(json.dumps(dict(zip(columns, row)), default=str))
        return
    tables.print_sql(columns, rows)


@click.command()
def formats() -> None:
    """List every ingest FORMAT and dataset recipe with the plugin that provides it."""
    for name, entry in registry("gaze_loaders").items():
        doc = (getattr(entry.obj, "__doc__", "") or "").strip().splitlines()
        click.echo(f"{name:<24} {entry.source.label:<32} {doc[0] if doc else ''}")
    recipes = recipe_paths()
    if recipes:
        click.echo("\ndatasets (streamgaze ingest-dataset NAME ROOT):")
    for name, (path, label) in recipes.items():
        try:
            title = load_recipe(path).title
        except StreamGazeError as exc:
            title = f"(broken recipe) {exc}"
        click.echo(f"{name:<24} {label:<32} {title}")


@click.group()
def export() -> None:
    """Write question files in other benchmarks' formats, a run's results, or the store as Parquet."""


@export.command("streamgaze-json")
@click.option("--qa", "qa_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of <task_id>.jsonl question files.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Folder for <task_id>.json in the released shape.")
@click.option("--store", type=click.Path(path_type=Path), help="Store with videos and episodes (default: QA/../store.duckdb).")
def export_streamgaze_json_cmd(qa_dir: Path, out_dir: Path, store: Path | None) -> None:
    """One JSON file per task in the released StreamGaze shape (MM:SS times, lettered options, test_info)."""
    for task_id, r in export_streamgaze_json(qa_dir, out_dir, store=store).items():
        extra = f", {r['changed_points']} test points changed type at whole seconds" if task_id.startswith("proactive_") else ""
        click.echo(f"{out_dir / (task_id + '.json')}: {r['items']} items{extra}")


@export.command("parquet")
@STORE
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Folder for <table>/[dataset=<value>/]data_0.parquet.")
def export_parquet_cmd(store: Path, out_dir: Path) -> None:
    """Every table of the store as Parquet, Hive-partitioned by dataset where the table has a dataset column
    (readable as is by DuckDB and pyarrow; `streamgaze sql --parquet DIRECTORY` queries it)."""
    for table, n in export_parquet(store, out_dir).items():
        click.echo(f"{out_dir / table}: {n} rows")


@export.command("reference-results")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="RUN")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Folder for NAME/results/<task_id>_output.json.")
@click.option("--model-name", required=True, help="The model's folder name in the reference's layout.")
@click.option("--viz", is_flag=True, help="Write into NAME/results_viz (the reference's folder for gaze-visualised runs).")
@click.option("--store", type=click.Path(path_type=Path), help="Store with videos and episodes, for .jsonl question files (default: QA/../store.duckdb when it exists).")
def export_reference_results_cmd(run_dir: Path, out_dir: Path, model_name: str, viz: bool, store: Path | None) -> None:
    """A run folder in the StreamGaze reference's result layout (released items with the model's answers)."""
    for task_id, r in export_reference_results(run_dir, out_dir, model_name, viz=viz, store=store).items():
        click.echo(f"{r['path']}: {r['items']} items ({task_id})")


@export.command("results")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["hf-dataset"]), default="hf-dataset", show_default=True,
              help="hf-dataset: predictions.parquet and a dataset card README.md, ready for `huggingface-cli upload`.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Folder for the dataset files.")
def export_results_cmd(run_dir: Path, fmt: str, out_dir: Path) -> None:
    """A run's per-sample results (one row per question or test point) with its settings and scores."""
    for path in export_hf_dataset(run_dir, out_dir):
        click.echo(str(path))


@click.group()
def render() -> None:
    """Render videos with gaze drawn on them."""


@render.command("overlay")
@STORE
@click.option("--video-id", help="Video to render (default: every video).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY")
@click.option("--scale", default=0.5, show_default=True, type=finite_float(0.1, 1.0), help="Output size as a fraction of the video's (the encoder dominates the time; 1.0 is about 2.5x slower).")
@click.option("--fps", "out_fps", type=finite_float(0.5), help="Output frame rate (default: the video's); lower keeps every k-th frame and encodes faster.")
def render_overlay_cmd(store: Path, video_id: str | None, out_dir: Path, scale: float, out_fps: float | None) -> None:
    """Write the scene video with the gaze dot and the FOV circle drawn on every frame (the same drawing as
    `eval --gaze-prompt overlay`)."""
    for path in render_overlay(store, out_dir, video_id=video_id, scale=scale, fps=out_fps):
        click.echo(path)
