"""``score --wandb PROJECT`` in W&B's offline mode: the run's settings, scores and per-sample table land in the local
run files that ``wandb sync`` would upload."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_eval_runner import N_ITEMS, Server, world  # noqa: F401  (fixture)

from streamgaze.cli import cli
from streamgaze.eval.samples import settings_hash
from streamgaze.eval.score import score_run

pytest.importorskip("wandb")  # in the test extra; the skip only protects a plain install


def test_score_logs_each_run_offline(world, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(world))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    with Server("key") as srv:
        res = CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "openai:m", "--base-url",
                                       srv.base_url, "--frames", "2", "--out", str(world / "R")])
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["score", str(world / "R"), "--wandb", "streamgaze-test", "--json"])
    assert res.exit_code == 0, res.output
    runs = sorted((world / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    scores = score_run(world / "R")
    table = json.loads(next((runs[0] / "files" / "media" / "table").glob("samples_*.table.json")).read_text())
    assert len(table["data"]) == N_ITEMS and table["columns"][:2] == ["question_id", "task"]
    # offline, W&B keeps config and summary in its binary run log (protobuf records, strings stored as they are)
    log = next(runs[0].glob("run-*.wandb")).read_bytes()
    digest = settings_hash(json.loads((world / "R" / "run.json").read_text()))
    assert b"settings_sha256" in log and digest.encode() in log
    assert b"accuracy/past_scene_recall" in log and b"overall" in log
    assert scores["tasks"]["past_scene_recall"]["accuracy"] == 1.0
