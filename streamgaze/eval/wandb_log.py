"""``score --wandb PROJECT``: each run folder as a Weights & Biases run (optional extra ``streamgaze[wandb]``).

The W&B run carries the run's settings as its config (with ``settings_sha256``), the per-task and overall scores as
its summary, and the per-sample log as a table, so a project page lines up models and gaze modes the way the report
does. ``WANDB_MODE=offline`` writes it locally for a later ``wandb sync`` (that is how the tests run it).
"""
from __future__ import annotations

import json
from pathlib import Path

from streamgaze.errors import StreamGazeError
from streamgaze.eval.samples import SCHEMA, SETTINGS_KEYS, sample_rows, settings_hash


def log_runs(runs: dict[str, Path], scores: dict[str, dict], project: str) -> list[str]:
    """Log each ``{name: run folder}`` with its ``scores[name]``; returns the W&B run ids."""
    try:
        import wandb
    except ImportError:
        raise StreamGazeError("--wandb needs the optional extra: pip install 'streamgaze[wandb]'") from None
    ids = []
    for name, run_dir in runs.items():
        info = json.loads((Path(run_dir) / "run.json").read_text())
        config = {k: info[k] for k in SETTINGS_KEYS if k in info and k != "question_files"}
        config["settings_sha256"] = settings_hash(info)
        run = wandb.init(project=project, name=name, job_type="eval", config=config, reinit="create_new")
        try:
            s = scores[name]
            summary = {f"accuracy/{task}": t["accuracy"] for task, t in s["tasks"].items() if t.get("accuracy") is not None}
            summary.update({"overall": s["overall"], "complete": s["complete"]})
            summary.update({f"family/{f}": v for f, v in s.get("families", {}).items()})
            run.summary.update(summary)
            rows = sample_rows(run_dir)
            table = wandb.Table(columns=SCHEMA.names,
                                data=[[json.dumps(r[c]) if isinstance(r[c], list) else r[c] for c in SCHEMA.names]
                                      for r in rows])
            run.log({"samples": table})
            ids.append(run.id)
        finally:
            run.finish()
    return ids
