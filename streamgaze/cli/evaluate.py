"""Evaluation: ``eval``, ``score``, ``compare``, ``review-score``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.cli.common import POSITIVE_INT, SEED, SHARD, STORE, batch_options, batch_settings, finite_float
from streamgaze.errors import StreamGazeError
from streamgaze.eval.audit_run import audit_run, verdict
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.prompts import GAZE_MODES, PROMPT_STYLES
from streamgaze.eval.reference_protocol import PROTOCOLS
from streamgaze.eval.release import find_benchmark
from streamgaze.eval.runner import evaluate
from streamgaze.eval.compare import compare_runs
from streamgaze.eval.samples import write_samples
from streamgaze.eval.score import run_question_videos, score_command
from streamgaze.progress import console
from streamgaze.review.data import human_scores

MODEL_HELP = ("Built in: `random`, `first-option`, blind `prior`/`longest`/`shortest`, `openai:<model>` or "
              "`text-only:<model>` (no frames); "
              "models from plugins by their names (`streamgaze plugins list`; an unknown name lists them all).")


@click.command("eval")
@click.option("--qa", "qa_dir", type=click.Path(path_type=Path), help="Folder of <task_id>.jsonl question files (or released StreamGaze <task_id>.json files).")
@click.option("--videos", "videos_dir", type=click.Path(path_type=Path), help="A released benchmark's videos folder (original_video/, gaze_viz_video/): evaluate with no store.")
@click.option("--benchmark", "benchmark", type=click.Path(path_type=Path), metavar="ROOT", help="A released StreamGaze folder: --qa ROOT/dataset/qa (or ROOT/qa) and --videos ROOT/dataset/videos (or ROOT/videos).")
@click.option("--allow-missing", is_flag=True, help="With --videos: record the questions whose video is not found as missing (wrong) instead of stopping.")
@click.option("--model", required=True, help=MODEL_HELP)
@click.option("--base-url", "base_urls", multiple=True, metavar="URL", help="OpenAI-compatible endpoint for openai:<model> (vLLM, Ollama, ...); repeat it for several: each request goes to the least busy.")
@click.option("--concurrency", default=8, show_default=True, type=POSITIVE_INT, help="Requests in flight at most (429 and 503 lower it for a while).")
@click.option("--retry-budget", default=600.0, show_default=True, type=finite_float(0), metavar="SECONDS", help="Retry a failed request (429, 5xx, timeouts) until this much time has passed.")
@click.option("--frame-cache", "frame_cache", type=click.Path(path_type=Path, file_okay=False), metavar="DIR", help="Folder of the frame cache (default: the user's cache folder, streamgaze/frames).")
@click.option("--no-frame-cache", is_flag=True, help="Decode every frame again; keep nothing on disk.")
@click.option("--gaze-prompt", default="none", show_default=True, type=click.Choice(list(GAZE_MODES)))
@click.option("--prompt-style", type=click.Choice(list(PROMPT_STYLES)), help="`reference`: the reference harness's texts, for parity runs (flagged). Default: the protocol's (windowed; reference with --protocol reference).")
@click.option("--protocol", default="ours", show_default=True, type=click.Choice(list(PROTOCOLS)),
              help="`reference`: the StreamGaze reference harness's clips, 16-frame sampling, 2048 px images, prompt texts and decoding defaults, for numbers next to the paper's (docs/eval.md).")
@click.option("--temperature", type=finite_float(0, 2), help="Sampling temperature sent to the endpoint (default 0; 0.7 with --protocol reference).")
@click.option("--top-p", "top_p", type=finite_float(0, 1), help="Nucleus sampling top_p sent to the endpoint (default: not sent; 0.8 with --protocol reference).")
@click.option("--max-tokens", "max_tokens", type=POSITIVE_INT, help="Longest reply in tokens (default 16; 1536 with --protocol reference).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), metavar="DIRECTORY", help="Run folder (resumable).")
@click.option("--store", type=click.Path(path_type=Path), help="Store with the videos and gaze (default: QA/../store.duckdb); when given, predictions are also written to its predictions table.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--frames", default=16, show_default=True, type=POSITIVE_INT, help="Frames sampled per clip.")
@click.option("--streaming", is_flag=True, help="Run the streaming alert metric on the proactive questions instead (poll every --poll-s).")
@click.option("--poll-s", default=1.0, show_default=True, type=finite_float(0.05), help="Streaming: poll interval P (and window W).")
@click.option("--tolerance-s", default=3.0, show_default=True, type=finite_float(0), help="Streaming: an alert within T' = max(T, P) of the onset is a hit.")
@SHARD
@batch_options
def eval_cmd(qa_dir: Path | None, videos_dir: Path | None, benchmark: Path | None, allow_missing: bool, model: str, base_urls: tuple[str, ...], concurrency: int, retry_budget: float,
             frame_cache: Path | None, no_frame_cache: bool, gaze_prompt: str, prompt_style: str | None,
             protocol: str, temperature: float | None, top_p: float | None, max_tokens: int | None, out_dir: Path,
             store: Path | None, seed: int, frames: int, streaming: bool, poll_s: float, tolerance_s: float,
             shard=None, **batch) -> None:
    """Ask a model every question; a rerun appends only what is missing.

    Ends with `audit run`'s verdict. Exit code 0 when every request was answered, 1 when some failed or the audit
    found a leak (their rows have outcome `error`; rerun the
    same command to retry them), 2 for bad input (options, question files), before anything is sent."""
    if benchmark is not None:
        if qa_dir is not None or videos_dir is not None:
            raise StreamGazeError("--benchmark ROOT replaces --qa and --videos; give one or the other")
        qa_dir, videos_dir = find_benchmark(benchmark)
    if qa_dir is None:
        raise StreamGazeError("give --qa QA_DIR (or --benchmark ROOT)")
    if allow_missing and videos_dir is None:
        raise StreamGazeError("--allow-missing goes with --videos or --benchmark")
    if no_frame_cache and frame_cache is not None:
        raise StreamGazeError("--frame-cache DIR and --no-frame-cache: give one or the other")
    config = EvalConfig(model=model, out_dir=out_dir, base_url=base_urls[0] if base_urls else None, concurrency=concurrency, gaze_prompt=gaze_prompt,
                        store=store, seed=seed, frames=frames, prompt_style=prompt_style, streaming=streaming,
                        poll_s=poll_s, tolerance_s=tolerance_s, videos=videos_dir, allow_missing=allow_missing,
                        protocol=protocol, temperature=temperature, top_p=top_p, max_tokens=max_tokens, shard=shard,
                        base_urls=base_urls, retry_budget_s=retry_budget,
                        frame_cache=False if no_frame_cache else (frame_cache or True))
    batch = batch_settings(**batch)
    if batch:
        from streamgaze.eval.batch import evaluate_batch

        outcome = evaluate_batch(qa_dir, config, **batch)
        if batch["write_dir"] is not None:  # requests written, the run folder left as it was
            click.echo(outcome.summary)
            return
    else:
        outcome = evaluate(qa_dir, config)
    click.echo(outcome.summary)
    write_samples(out_dir)
    checked = audit_run(out_dir)
    click.echo(verdict(checked))
    failure = outcome.failure()
    if failure is not None:
        raise failure
    if checked["leaks"]:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), metavar="DIRECTORY", help="Where report.md goes (default: the first run folder).")
@click.option("--store", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Store whose reviews add human accuracy per task beside the models.")
@click.option("--scoring", default="ours", show_default=True, type=click.Choice(["ours", "reference"]),
              help="What the table and --json show: our rules, or the StreamGaze reference's evaluate_results.py rules. The report always shows both.")
@click.option("--wandb", "wandb_project", metavar="PROJECT", help="Also log each run (settings, scores, per-sample table) to this Weights & Biases project (extra streamgaze[wandb]).")
def score(runs: tuple[Path, ...], as_json: bool, report_dir: Path | None, store: Path | None, scoring: str,
          wandb_project: str | None) -> None:
    """Accuracy per task, family and overall, with clustered bootstrap 95% intervals; writes report.md,
    report.html and scores.png. Several run folders are shown side by side; two get a paired comparison
    (the second minus the first) in the report."""
    human = human_scores(store, videos=run_question_videos(runs)) if store else None
    result = score_command(list(runs), report_dir=report_dir, human=human,
                           scoring=scoring, comparison=compare_runs(*runs) if len(runs) == 2 else None)
    if wandb_project:
        from streamgaze.eval.wandb_log import log_runs  # the optional extra is imported only when asked for

        log_runs(dict(zip(result["scores"], runs)), result["scores"], wandb_project)
    if as_json:
        click.echo(json.dumps(result["json"], indent=None, sort_keys=False))
        return
    scores = result["scores"]
    tables.print_scores({**scores, "human": result["human"]} if result["human"] is not None else scores)
    if result["human"] is not None:
        tables.print_agreement(result["human"])
    flags = {t: tuple(b) for s in scores.values() for t, b in (s.get("blind_flags") or {}).items()}
    for task, baselines in sorted(flags.items()):
        console.print(f"warning: {task}: the blind {' and '.join(baselines)} baseline's interval lies above chance "
                      "(the text gives answers away; see the report's \"Blind baselines\")")
    for p in result["reports"]:
        console.print(f"report: {p}")


@click.command()
@click.argument("run_1", metavar="R1", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_2", metavar="R2", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), metavar="DIRECTORY",
              help="Also write the two runs' report (report.md, report.html, ...) with the comparison section there.")
def compare(run_1: Path, run_2: Path, as_json: bool, report_dir: Path | None) -> None:
    """Paired difference R2 - R1 on the questions both runs answered, per task and overall: clustered
    bootstrap 95% intervals, exact McNemar p-values (a sign-flip test for proactive tasks), Holm-corrected."""
    comparison = compare_runs(run_1, run_2)
    reports = []
    if report_dir is not None:
        reports = score_command([run_1, run_2], report_dir=report_dir, comparison=comparison)["reports"]
    if as_json:
        click.echo(json.dumps(comparison))
        return
    tables.print_comparison(comparison)
    for p in reports:
        console.print(f"report: {p}")


@click.command("review-score")
@STORE
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
def review_score(store: Path, as_json: bool) -> None:
    """Human accuracy per task from the answers given in `streamgaze review` (answer mode), with clustered
    intervals, and the agreement between reviewers (Cohen's kappa for two, Fleiss' for more)."""
    scores = human_scores(store)
    if as_json:
        click.echo(json.dumps(scores))
    else:
        tables.print_scores({"human": scores})
        tables.print_agreement(scores)
