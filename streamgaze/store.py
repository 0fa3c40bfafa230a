"""The DuckDB store: one file holds a dataset's gaze, fixations, episodes, objects, actions and questions.

Coordinates are normalised to [0, 1], origin top left of the scene frame; times are float seconds from the
video's start. Every pipeline step writes inside one transaction (`Store.transaction`), after its input has
been validated, so a step that fails leaves the file as it was.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from streamgaze.errors import InputError, StreamGazeError

SCHEMA_VERSION = 1

SCHEMA = {
    "meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "videos": "video_id VARCHAR PRIMARY KEY, dataset VARCHAR, path VARCHAR, fps DOUBLE, width INTEGER, "
    "height INTEGER, duration_s DOUBLE, n_frames INTEGER",
    "gaze": "video_id VARCHAR, t_s DOUBLE, x DOUBLE, y DOUBLE, valid BOOLEAN, in_frame BOOLEAN",
    # degrees per normalised unit of x and height / width, where the gaze format knows them (`ingest.GazeUnits`)
    "gaze_units": "video_id VARCHAR, deg_per_unit DOUBLE, aspect DOUBLE, source VARCHAR",
    "fixations": "video_id VARCHAR, fixation_id INTEGER, t_start DOUBLE, t_end DOUBLE, x DOUBLE, y DOUBLE, "
    "n_samples INTEGER, detector VARCHAR",
    "episodes": "video_id VARCHAR, episode_id VARCHAR, t_start DOUBLE, t_end DOUBLE, x DOUBLE, y DOUBLE, "
    "n_fixations INTEGER",
    "objects": "video_id VARCHAR, episode_id VARCHAR, name VARCHAR, role VARCHAR, attributes VARCHAR, "
    "labeller VARCHAR",
    "label_requests": "video_id VARCHAR, episode_id VARCHAR, labeller VARCHAR, model VARCHAR, n_requests INTEGER, "
    "n_cached INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd DOUBLE, latency_s DOUBLE, "
    "cached BOOLEAN, status VARCHAR, error VARCHAR",
    "actions": "video_id VARCHAR, t_start DOUBLE, t_end DOUBLE, label VARCHAR",
    "qa_items": "id VARCHAR PRIMARY KEY, task VARCHAR, family VARCHAR, video_id VARCHAR, time_s DOUBLE, "
    "clip_start DOUBLE, clip_end DOUBLE, question VARCHAR, answer VARCHAR, answer_text VARCHAR, item VARCHAR",
    "qa_skips": "task VARCHAR, video_id VARCHAR, reason VARCHAR, n INTEGER",
    "predictions": "run_id VARCHAR, question_id VARCHAR, task VARCHAR, point_idx INTEGER, t_s DOUBLE, "
    "model VARCHAR, gaze_prompt VARCHAR, response VARCHAR, parsed VARCHAR, outcome VARCHAR, latency_s DOUBLE, "
    "prompt_style VARCHAR",
    # streamgaze review: one row per verdict (mode verify) or human answer (mode answer); latest row wins
    "reviews": "reviewer VARCHAR, question_id VARCHAR, task VARCHAR, point_idx INTEGER, mode VARCHAR, "
    "verdict VARCHAR, reason VARCHAR, answer VARCHAR, correct BOOLEAN, created_at TIMESTAMP",
}

READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class Store:
    """A connection to a store file. Use `open_store` to get one."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            if not self.path.exists():
                raise InputError(self.path, "no such store file")
            self.con = _connect(self.path, read_only=True, config=READ_ONLY_CONFIG)
            self._check_version()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = _connect(self.path, read_only=False)
            self._create()

    def _create(self) -> None:
        with self.transaction():
            for table, columns in SCHEMA.items():
                self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            self.con.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)]
            )
        self._check_version()

    def _check_version(self) -> None:
        try:
            rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
            row = rows[0] if rows else None  # fetched to the end: DuckDB 2 refuses new work over an open result
        except duckdb.Error:
            raise InputError(self.path, "not a streamgaze store (no meta table)") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise InputError(self.path, f"store schema version {row and row[0]}, this streamgaze reads {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: on any exception the transaction rolls back and the exception propagates."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    def replace_video_rows(self, table: str, video_ids: list[str], rows: pa.Table) -> None:
        """Delete ``table``'s rows of ``video_ids`` and insert ``rows`` (call inside `transaction`)."""
        columns = [c.split()[0] for c in SCHEMA[table].split(", ")]
        if video_ids:
            self.con.execute(f"DELETE FROM {table} WHERE video_id IN (SELECT unnest(?))", [list(video_ids)])
        self.insert(table, rows, columns)

    def insert(self, table: str, rows: pa.Table, columns: list[str] | None = None) -> None:
        """Append an arrow table; columns are matched by name, missing ones become NULL."""
        if rows.num_rows == 0:
            return
        columns = columns or [c.split()[0] for c in SCHEMA[table].split(", ")]
        present = [c for c in columns if c in rows.column_names]
        self.con.register("_incoming", rows)
        try:
            cols = ", ".join(present)
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
        finally:
            self.con.unregister("_incoming")

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """The result as an arrow table, fetched from a relation (a cursor's arrow output copies the rows)."""
        rel = self.con.sql(sql, params=params or None)
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb >= 1.4 name first
        return fetch()

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def video_ids(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT video_id FROM videos ORDER BY video_id").fetchall()]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(path: Path, read_only: bool, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.Error as exc:
        raise InputError(path, f"cannot open store: {str(exc).splitlines()[0]}") from None


def open_store(path: str | Path, read_only: bool = False) -> Store:
    """Open (and, for writing, create) a store file."""
    return Store(path, read_only=read_only)


def run_readonly_sql(path: str | Path, sql: str, timeout_s: float = 10.0) -> tuple[list[str], list[tuple]]:
    """Run one query on a read-only connection with external access off; interrupted after ``timeout_s``."""
    store = open_store(path, read_only=True)
    timer = threading.Timer(timeout_s, store.con.interrupt)
    timer.start()
    try:
        cur = store.con.execute(sql)
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.InterruptException:
        raise StreamGazeError(f"query stopped after {timeout_s:g} s") from None
    except duckdb.Error as exc:
        raise StreamGazeError(f"{Path(path)}: SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        timer.cancel()
        store.close()
