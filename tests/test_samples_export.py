"""The per-sample log (``R/samples.jsonl``) and ``export results --format hf-dataset``: one row per item with what was
asked, shown and answered, the same counts as the scorer, Parquet readable by pyarrow and DuckDB, a dataset card."""
from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
from click.testing import CliRunner
from test_eval_runner import MCQ, N_ITEMS, Server, lines, world  # noqa: F401  (fixture)

from streamgaze.cli import cli
from streamgaze.eval.samples import SCHEMA, sample_rows, settings_hash, write_samples
from streamgaze.eval.score import score_run


def _eval(world, out, url, mode="overlay"):
    res = CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "openai:m", "--base-url", url,
                                   "--frames", "3", "--gaze-prompt", mode, "--out", str(world / out)])
    assert res.exit_code == 0, res.output


def test_samples_log_has_every_item_and_agrees_with_the_score(world):
    with Server("key") as srv:
        _eval(world, "R", srv.base_url)
    rows = lines(world / "R" / "samples.jsonl")
    assert len(rows) == N_ITEMS and set(rows[0]) == set(SCHEMA.names)
    by_id = {r["question_id"]: r for r in rows if r["point_idx"] == -1}
    psr = by_id["psr-1"]
    assert psr["question"] == MCQ[0]["question"] and psr["options"] == MCQ[0]["options"] and psr["expected"] == "C"
    assert psr["clip"] == [0.0, 8.0] and len(psr["frames"]) == 3 and psr["response"] == "C." and psr["correct"]
    scores = score_run(world / "R")
    for task, s in scores["tasks"].items():
        assert sum(r["correct"] for r in rows if r["task"] == task) == s["correct"]
    # an item without a prediction is a row too, outcome missing
    pred = world / "R" / "predictions.jsonl"
    kept = [r for r in lines(pred) if r["question_id"] != "psr-2"]
    pred.write_text("".join(json.dumps(r) + "\n" for r in kept))
    write_samples(world / "R")
    again = {r["question_id"]: r for r in lines(world / "R" / "samples.jsonl") if r["point_idx"] == -1}
    assert again["psr-2"]["outcome"] == "missing" and again["psr-2"]["response"] is None
    assert again["psr-2"]["clip"] == [0.0, 6.0]


def test_settings_hash_matches_equal_settings_only(world):
    with Server("key") as srv:
        _eval(world, "A", srv.base_url)
        _eval(world, "B", srv.base_url)
        _eval(world, "C", srv.base_url, mode="none")
    info = {k: json.loads((world / k / "run.json").read_text()) for k in "ABC"}
    assert settings_hash(info["A"]) != settings_hash(info["C"])
    # the endpoint's port differs between servers, so compare with the same endpoint
    assert settings_hash(info["A"]) == settings_hash(info["B"])
    assert {r["settings_sha256"] for r in sample_rows(world / "A")} == {settings_hash(info["A"])}


def test_hf_dataset_export(world):
    with Server("key") as srv:
        _eval(world, "R", srv.base_url)
    out = world / "hf"
    res = CliRunner().invoke(cli, ["export", "results", str(world / "R"), "--format", "hf-dataset", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "predictions.parquet", "run.json", "scores.json"]
    table = pq.read_table(out / "predictions.parquet")
    assert table.schema.equals(SCHEMA) and table.num_rows == N_ITEMS
    assert table.to_pylist() == lines(world / "R" / "samples.jsonl")
    n_correct = duckdb.connect().execute(f"SELECT count(*) FROM '{out / 'predictions.parquet'}' WHERE correct").fetchone()[0]
    assert n_correct == sum(s["correct"] for s in score_run(world / "R")["tasks"].values())
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:\n- config_name: default\n  data_files: predictions.parquet\n")
    assert "| past_scene_recall | 1.000 |" in card and settings_hash(json.loads((world / "R" / "run.json").read_text())) in card


def test_hf_dataset_bad_outputs_are_one_line_and_write_nothing(world):
    with Server("key") as srv:
        _eval(world, "R", srv.base_url)
    blocker = world / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(cli, ["export", "results", str(world / "R"), "--out", str(blocker)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and str(blocker) in res.output
    (world / "empty").mkdir()
    res = CliRunner().invoke(cli, ["export", "results", str(world / "empty"), "--out", str(world / "hf")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and not (world / "hf").exists()
