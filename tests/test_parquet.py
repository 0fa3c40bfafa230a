"""``streamgaze export parquet`` and ``streamgaze sql --parquet`` (issue 18): every table round-trips with its row
count and values through DuckDB and through pyarrow as is, ``videos`` Hive-partitioned by dataset (NULL and odd
values included), an existing --out is replaced table by table, and a query cannot reach outside the folder."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import store_from_truth
from streamgaze.cli import cli
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.runner import run_eval
from streamgaze.objects.stage import run_objects
from streamgaze.parquet import export_parquet, run_parquet_sql
from streamgaze.store import SCHEMA, open_store
from streamgaze.tasks.generate import run_generate

ODD = ["P02_kitchen", "P03_odd"]  # videos with a NULL dataset and one needing URL-encoding in its folder name


def columns(table: str) -> list[str]:
    return [c.split()[0] for c in SCHEMA[table].split(", ")]


@pytest.fixture(scope="module")
def store(small_world, small_truth, tmp_path_factory):
    """A store with rows in every table (predictions, a review with a timestamp, gaze units, fixations, ...)."""
    root = tmp_path_factory.mktemp("parquet")
    path = store_from_truth(small_world, root / "store.duckdb", small_truth)
    run_objects(path, options={"truth": str(small_world.truth)})
    run_generate(path, root / "qa")
    run_eval(root / "qa", EvalConfig("first-option", root / "run", store=path))
    with open_store(path) as st, st.transaction() as con:
        con.execute("INSERT INTO videos VALUES (?, NULL, '', 24, 640, 480, 10, 240), "
                    "(?, 'egtea/v2 a=b%', '', 30, 640, 480, 5, 150)", ODD)
        con.execute("INSERT INTO reviews VALUES ('ann', 'q1', 'past_x', -1, 'verify', 'valid', NULL, NULL, NULL, ?)",
                    [dt.datetime(2026, 1, 2, 3, 4, 5, 123456)])
        con.execute("INSERT INTO gaze_units VALUES (?, 82.5, 0.75, 'pupil')", [small_world.video_id])
        con.execute("INSERT INTO fixations VALUES (?, 1, 0.5, 0.8, 0.25, 0.5, 36, 'ivt')", [small_world.video_id])
        con.execute("INSERT INTO label_requests VALUES (?, 'e1', 'openai', 'm', 1, 0, 10, 2, 0.001, 0.3, false, 'ok', NULL)",
                    [small_world.video_id])
        con.execute("INSERT INTO recording_sources VALUES (?, 'synthetic', 'gaze', '/data/gaze.csv', 10, 'ab12')",
                    [small_world.video_id])
        con.execute("INSERT INTO recording_checks VALUES (?, 'synthetic', 100, 200.0, 30.0, 45.0, 44.9, 0.98, 0.01, "
                    "0.0, 0.15, false, '')", [small_world.video_id])
    return path


def store_rows(store, table: str) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return sorted(con.execute(f"SELECT {', '.join(columns(table))} FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


def test_every_table_round_trips_through_duckdb_and_pyarrow(store, tmp_path):
    out = tmp_path / "pq"
    counts = export_parquet(store, out)
    assert set(counts) == set(SCHEMA) and all(counts[t] == len(store_rows(store, t)) for t in SCHEMA)
    assert all(counts[t] > 0 for t in SCHEMA)
    assert sorted(p.name for p in (out / "videos").iterdir()) == [
        "dataset=__HIVE_DEFAULT_PARTITION__", "dataset=egtea%2Fv2%20a%3Db%25", "dataset=synthetic"]
    assert [p.name for p in (out / "gaze").iterdir()] == ["data_0.parquet"]
    con = duckdb.connect()
    for table in SCHEMA:
        expected = store_rows(store, table)
        cols = ", ".join(columns(table))
        hive = ", hive_types = {'dataset': VARCHAR}" if "dataset" in columns(table) else ""
        got = con.execute(f"SELECT {cols} FROM read_parquet('{out / table}/**/*.parquet', hive_partitioning = true{hive})").fetchall()
        assert sorted(got, key=repr) == expected, table
        arrow = pq.read_table(out / table)  # pyarrow as is: Hive partitions found and decoded by default
        assert arrow.num_rows == len(expected)
        got = [tuple(r[c] for c in columns(table)) for r in arrow.to_pylist()]
        assert sorted(got, key=repr) == expected, table
    # the types survive: integers, timestamps, booleans
    schema = pq.read_schema(next((out / "reviews").glob("*.parquet")))
    assert str(schema.field("created_at").type).startswith("timestamp") and str(schema.field("point_idx").type) == "int32"


def test_an_empty_table_keeps_its_columns(small_world, small_truth, tmp_path):
    store = store_from_truth(small_world, tmp_path / "s.duckdb", small_truth)
    with open_store(store) as st, st.transaction() as con:
        for table in ("videos", "gaze", "episodes", "actions"):
            con.execute(f"DELETE FROM {table}")
    counts = export_parquet(store, tmp_path / "pq")
    assert set(counts.values()) == {0, 1}  # meta holds the schema version
    for table in SCHEMA:
        assert set(pq.read_table(tmp_path / "pq" / table).column_names) == set(columns(table)), table
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path / 'pq' / table}/**/*.parquet', "
                          "hive_partitioning = true)").fetchall() == [(counts[table],)]


def test_sql_over_an_export(store, tmp_path):
    out = tmp_path / "pq"
    result = CliRunner().invoke(cli, ["export", "parquet", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0 and f"{out / 'gaze'}: " in result.output, result.output
    result = CliRunner().invoke(cli, ["sql", "--parquet", str(out), "--json",
                                      "SELECT dataset, count(*) AS n FROM videos GROUP BY ALL ORDER BY n DESC, dataset"])
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in result.output.splitlines()]
    counts = {}
    for row in store_rows(store, "videos"):
        counts[row[1]] = counts.get(row[1], 0) + 1
    assert {r["dataset"]: r["n"] for r in got} == counts and len(counts) == 3
    n_questions = len(store_rows(store, "qa_items"))
    assert run_parquet_sql(out, "SELECT count(*) FROM qa_items q JOIN videos v USING (video_id)")[1] == [(n_questions,)]
    for query, message in (("COPY gaze TO 'x.csv'", "one read-only query"),
                           ("CREATE TABLE t AS SELECT 1", "one read-only query"),
                           ("SELECT 1; SELECT 2", "one read-only query"),
                           ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
                           ("SELECT * FROM nowhere", "SQL error")):
        result = CliRunner().invoke(cli, ["sql", "--parquet", str(out), query])
        assert result.exit_code == 2 and message in result.output, (query, result.output)
    for args in (["sql", "SELECT 1"], ["sql", "SELECT 1", "--store", str(store), "--parquet", str(out)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "one of them" in result.output
    result = CliRunner().invoke(cli, ["sql", "--parquet", str(tmp_path), "SELECT 1"])
    assert result.exit_code == 2 and "no table folders" in result.output


def test_an_existing_out_is_replaced_table_by_table(store, tmp_path):
    out = tmp_path / "pq"
    export_parquet(store, out)
    (out / "notes.txt").write_text("mine")
    stale = store.with_name("stale.duckdb")
    shutil.copy(store, stale)
    with open_store(stale) as st, st.transaction() as con:
        con.execute("UPDATE videos SET dataset = 'renamed'")
    export_parquet(stale, out)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["dataset=renamed"]  # no stale partition left
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in [*out.iterdir(), *tmp_path.iterdir()] if p.name.startswith(".")]  # no temporary folder


def test_bad_outputs_and_stores_change_nothing(store, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "pq").mkdir()
    (tmp_path / "pq" / "gaze").write_text("a file where a table folder goes")
    for out, message in ((tmp_path / "file", "is a file"), (tmp_path / "pq", "is a file; the export")):
        result = CliRunner().invoke(cli, ["export", "parquet", "--store", str(store), "--out", str(out)])
        assert result.exit_code == 2 and message in result.output, result.output
    assert [p.name for p in (tmp_path / "pq").iterdir()] == ["gaze"]
    (tmp_path / "bad.duckdb").write_text("not a store")
    result = CliRunner().invoke(cli, ["export", "parquet", "--store", str(tmp_path / "bad.duckdb"), "--out", str(tmp_path / "new")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
