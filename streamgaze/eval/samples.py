"""The per-sample log of a run, and the run as a Hugging Face dataset.

``R/samples.jsonl`` holds one self-contained line per item of the run's question files (a multiple-choice question,
or one test point of a proactive one), in question-file order: what was asked (question, options, the expected
answer, the clip and question time), what was shown (frame times, gaze mode, the newest gaze sample shown), what came
back (response, parsed answer, outcome, latency) and ``settings_sha256``, a hash of the run's settings, so samples
of two runs can be told apart or matched without their run folders. An item never answered is a line with outcome
``missing``. The fields are documented in docs/eval.md (the per-sample log); the log is rewritten after each run.

``export results R --format hf-dataset`` writes the same rows as Parquet with a dataset card, ready for
``huggingface-cli upload``.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from streamgaze import __version__
from streamgaze.eval.runner import RUN_SETTINGS, items_of
from streamgaze.eval.score import load_run, score_run
from streamgaze.paths import write_files
from streamgaze.tasks.spec import family_of

SAMPLES = "samples.jsonl"
SETTINGS_KEYS = RUN_SETTINGS + ("question_files",)  # what the settings hash covers (not when or where a run ran)
SCHEMA = pa.schema([
    ("question_id", pa.string()), ("task", pa.string()), ("family", pa.string()), ("video_id", pa.string()),
    ("point_idx", pa.int32()), ("time_s", pa.float64()), ("question", pa.string()), ("options", pa.list_(pa.string())),
    ("expected", pa.string()), ("clip", pa.list_(pa.float64())), ("frames", pa.list_(pa.float64())),
    ("gaze_prompt", pa.string()), ("gaze_until", pa.float64()), ("model", pa.string()), ("response", pa.string()),
    ("parsed", pa.string()), ("outcome", pa.string()), ("correct", pa.bool_()), ("latency_s", pa.float64()),
    ("settings_sha256", pa.string()),
])


def settings_hash(info: dict) -> str:
    """sha256 of the run's settings (`SETTINGS_KEYS` present in run.json), as canonical JSON."""
    settings = {k: info[k] for k in SETTINGS_KEYS if k in info}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sample_rows(run_dir) -> list[dict]:
    """The log's rows (`SCHEMA`'s columns), one per item, in question-file order."""
    info, questions, _changed, latest = load_run(run_dir)
    digest = settings_hash(info)
    rows = []
    for task in sorted(questions):
        for q in questions[task]:
            for it in items_of(q):
                row = latest.get(it.key) or {}
                outcome = row.get("outcome") or "missing"
                rows.append({
                    "question_id": q["id"], "task": q["task"], "family": q.get("family") or family_of(q["task"]), "video_id": q.get("video_id"),
                    "point_idx": it.point_idx, "time_s": it.t_s if it.proactive else q.get("time_s"),
                    "question": q["question"], "options": list(q.get("options") or []), "expected": it.expected,
                    "clip": row.get("clip") or list(it.clip), "frames": row.get("frames") or [],
                    "gaze_prompt": row.get("gaze_prompt") or info.get("gaze_prompt"), "gaze_until": row.get("gaze_until"),
                    "model": row.get("model") or info.get("model"), "response": row.get("response"),
                    "parsed": row.get("parsed"), "outcome": outcome, "correct": outcome == "correct",
                    "latency_s": row.get("latency_s"), "settings_sha256": digest,
                })
    return rows


def write_samples(run_dir) -> Path:
    """(Re)write ``R/samples.jsonl`` atomically."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample_rows(run_dir))
    return write_files(run_dir, {SAMPLES: text})[0]


def export_hf_dataset(run_dir, out_dir) -> list[Path]:
    """``out_dir/{predictions.parquet, README.md, run.json, scores.json}``: the samples as Parquet (one row per
    item), and a dataset card with the settings and scores. All files written or none."""
    run_dir = Path(run_dir)
    rows = sample_rows(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    scores = score_run(run_dir)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf, compression="zstd")
    return write_files(out_dir, {
        "predictions.parquet": buf.getvalue(),
        "README.md": dataset_card(info, scores, len(rows)),
        "run.json": json.dumps(info, indent=1, ensure_ascii=False) + "\n",
        "scores.json": json.dumps(scores, indent=1, ensure_ascii=False) + "\n",
    })


def dataset_card(info: dict, scores: dict, n_rows: int) -> str:
    """A Hugging Face dataset card: YAML front matter naming the data file, then settings and scores."""
    model = info.get("model") or "?"
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files: predictions.parquet",
        "tags:",
        "- streamgaze",
        "- evaluation",
        "---",
        "",
        f"# StreamGaze evaluation results: {model} (gaze prompt `{info.get('gaze_prompt')}`)",
        "",
        f"Per-sample results of one `streamgaze eval` run (streamgaze {__version__}): {n_rows} rows in "
        "`predictions.parquet`, one per multiple-choice question or proactive test point; an item the run never "
        "answered has outcome `missing`.",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for key in SETTINGS_KEYS:
        if key in info and key != "question_files":
            lines.append(f"| {key} | `{json.dumps(info[key], ensure_ascii=False)}` |")
    lines += [f"| settings_sha256 | `{settings_hash(info)}` |", "", "## Scores", "",
              "| task | accuracy | 95% interval | n |", "|---|---|---|---|"]
    for task, s in sorted(scores["tasks"].items()):
        ci = s.get("ci95") or [None, None]
        acc = "" if s.get("accuracy") is None else f"{s['accuracy']:.3f}"
        interval = "" if ci[0] is None else f"{ci[0]:.3f} to {ci[1]:.3f}"
        lines.append(f"| {task} | {acc} | {interval} | {s['n']} |")
    overall = scores.get("overall")
    if overall is not None:
        lines.append(f"| **overall** | {overall:.3f} | | |")
    lines += ["", "Question files (sha256):", ""]
    lines += [f"- `{name}`: `{digest}`" for name, digest in sorted((info.get("question_files") or {}).items())]
    return "\n".join(lines) + "\n"
