"""The DuckDB store: one file holds a dataset's gaze, fixations, episodes, objects, actions and questions.

Coordinates are normalised to [0, 1], origin top left of the scene frame; times are float seconds from the
video's start. Every pipeline step writes inside one transaction (`Store.transaction`), after its input has
been validated, so a step that fails leaves the file as it was.
"""
from __future__ import annotations

import threading
from collections import Counter
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
    # streamgaze ingest-dataset: the source files of each recording (a rerun skips unchanged ones) and its checks
    "recording_sources": "video_id VARCHAR, dataset VARCHAR, role VARCHAR, path VARCHAR, size BIGINT, hash VARCHAR",
    "recording_checks": "video_id VARCHAR, dataset VARCHAR, n_gaze BIGINT, gaze_rate_hz DOUBLE, video_fps DOUBLE, "
    "video_duration_s DOUBLE, gaze_duration_s DOUBLE, coverage DOUBLE, invalid_share DOUBLE, outside_share DOUBLE, "
    "frames_per_sample DOUBLE, rate_mismatch BOOLEAN, warnings VARCHAR",
}
#: Tables added after schema version 1 without a version bump: a store that lacks them is still read, and gets
#: them (empty) with its next committed write.
ADDED_TABLES = ("recording_sources", "recording_checks")

READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class Store:
    """A connection to a store file. Use `open_store` to get one.

    Opening checks before it writes: the file must be a streamgaze store of this schema version (all of
    `SCHEMA`'s tables; a ``meta`` row ``schema_version``) or a new path. A writable store connects to a new path
    only when first used and creates the tables inside the first transaction, so a command that fails leaves no
    file behind; a store made before the version row was kept (all tables, no row) is read as version 1 and gets
    the row with its first committed write. Read-only opens never write.
    """

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None
        self._new = False  # a new path: the file and the tables are made by the first transaction
        self._needs_version = False  # an old store without the schema_version row
        self._made: list[Path] = []  # folders and the file made for a new store, removed if nothing is committed
        self._committed = False
        self._pending = False  # the new store's creating transaction is open
        _check_path(self.path)
        if read_only:
            if not self.path.exists():
                raise InputError(self.path, "no such store file")
            self._con = _connect(self.path, read_only=True, config=READ_ONLY_CONFIG)
            try:
                self._needs_version = _check_schema(self.path, self._con)
            except BaseException:
                self._con.close()
                raise
            return
        if self.path.exists():
            with _connect(self.path, read_only=True, config=READ_ONLY_CONFIG) as ro:
                self._needs_version = _check_schema(self.path, ro)  # before anything can be written
            self._con = _connect(self.path, read_only=False)
        else:
            self._new = True

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:  # a new store, used for the first time: made in a transaction left open
            missing = [p for p in reversed(self.path.parents) if not p.exists()]
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(self.path, f"cannot make its folder: {exc.strerror or exc}") from None
            self._made = missing
            self._con = _connect(self.path, read_only=False)
            self._made.append(self.path)
            self._con.execute("BEGIN TRANSACTION")
            for table, columns in SCHEMA.items():
                self._con.execute(f"CREATE TABLE {table} ({columns})")
            self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            self._pending = True
        return self._con

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: on any exception the transaction rolls back and the exception propagates."""
        if self.read_only:
            raise StreamGazeError(f"{self.path}: store opened read-only")
        con = self.con
        if not self._pending:
            con.execute("BEGIN TRANSACTION")
        try:
            for table in ADDED_TABLES:
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({SCHEMA[table]})")
            if self._needs_version:
                con.execute(f"CREATE TABLE IF NOT EXISTS meta ({SCHEMA['meta']})")
                con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                            [str(SCHEMA_VERSION)])
            yield con
        except BaseException:
            if self._pending:  # the new store's tables go too: no file is left behind
                self.close()
            else:
                con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")
            self._committed, self._needs_version, self._pending = True, False, False

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
        if self._con is None:
            return
        con, self._con = self._con, None
        if self._new and not self._committed:  # a new store that never committed: leave no file behind
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            con.close()
            self._pending = False
            _OPEN_WRITERS[self.path.resolve()] -= 1
            for p in reversed(self._made):
                try:
                    if p.is_dir():
                        p.rmdir()
                    else:
                        p.unlink(missing_ok=True)
                        Path(str(p) + ".wal").unlink(missing_ok=True)
                except OSError:
                    pass
            return
        con.close()
        if not self.read_only:
            _OPEN_WRITERS[self.path.resolve()] -= 1

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_HEADER_BYTES = 3 * 4096  # a DuckDB file: three header blocks, then total_blocks blocks of block_size


def check_store_path(path: str | Path) -> None:
    """Raise one line if ``path`` cannot be a store file (a folder, under a file, an empty file)."""
    _check_path(Path(path))


def _check_path(path: Path) -> None:
    """One line for a path that cannot be a store file: a folder, or under a file."""
    if path.is_dir():
        raise InputError(path, "is a folder, not a store file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(path, f"{parent} is a file, not a folder")
            break
    if path.exists() and path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes), not a DuckDB store; remove it or choose another --store")


def _check_schema(path: Path, con: duckdb.DuckDBPyConnection) -> bool:
    """Is ``con``'s database a streamgaze store this version reads? Raises one line if not; returns True for
    an old store without the ``schema_version`` row (read as version 1)."""
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_catalog = current_database()").fetchall()}
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() if "meta" in tables else []
        block, blocks = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    except duckdb.Error as exc:
        raise InputError(path, f"cannot read store: {_first_line(exc)}") from None
    size, need = path.stat().st_size, _HEADER_BYTES + int(blocks or 0) * int(block or 0)
    wal = path.with_name(path.name + ".wal")  # blocks still in the write-ahead log are not in the file yet
    # DuckDB opens a cut file and fails only when a missing block is read. The blocks in use cannot fit in fewer
    # bytes (free blocks at the end may be trimmed, so the total is no bound).
    if size < need and not wal.exists() and _OPEN_WRITERS[path.resolve()] <= 0:
        raise InputError(path, f"a damaged (truncated or corrupt) DuckDB file: {size} bytes of {need}")
    if not tables:
        raise InputError(path, "a DuckDB file without tables, not a streamgaze store")
    ours = tables & set(SCHEMA)
    if not rows and len(ours) < len(SCHEMA) // 2:
        raise InputError(path, "not a streamgaze store (a DuckDB file of another application); nothing was changed")
    if rows:
        try:
            version = int(rows[0][0])
        except (TypeError, ValueError):
            version = None
        if version != SCHEMA_VERSION:
            raise InputError(path, f"store schema version {rows[0][0]}, this streamgaze reads {SCHEMA_VERSION}")
    missing = [t for t in SCHEMA if t not in tables and t not in ADDED_TABLES and not (t == "meta" and not rows)]
    if missing:
        raise InputError(path, f"store lacks table {', '.join(missing)}; it was not made by this version or was altered")
    return not rows


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


#: Store files this process holds open for writing: their blocks may not all be in the file yet, so the truncation
#: check (`_check_schema`) does not apply to them. Another process's writer holds DuckDB's lock, so a read-only
#: open from here fails with "in use" before the check.
_OPEN_WRITERS: Counter[Path] = Counter()


def _connect(path: Path, read_only: bool, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config or {})
        if not read_only:
            _OPEN_WRITERS[path.resolve()] += 1
        return con
    except duckdb.Error as exc:
        msg = _first_line(exc)
        if "lock" in msg.lower():
            raise StreamGazeError(f"store {path} is in use by another streamgaze process (a store has one writer "
                                  "at a time); try again when it has finished") from None
        if "not a valid DuckDB database file" in msg:
            raise InputError(path, "not a DuckDB file; nothing was changed") from None
        if "Could not read enough bytes" in msg or "Corrupt" in msg or "checksum" in msg.lower():
            raise InputError(path, f"a damaged (truncated or corrupt) DuckDB file: {msg}") from None
        raise InputError(path, f"cannot open store: {msg}") from None


def open_store(path: str | Path, read_only: bool = False) -> Store:
    """Open a store file (checked first); for writing, a new path becomes a store with the first transaction."""
    return Store(path, read_only=read_only)


def run_readonly_sql(path: str | Path, sql: str, timeout_s: float = 10.0) -> tuple[list[str], list[tuple]]:
    """Run one query on a read-only connection with external access off; interrupted after ``timeout_s``."""
    store = open_store(path, read_only=True)
    try:
        return run_query(store.con, sql, Path(path), timeout_s)
    finally:
        store.close()


def run_query(con: duckdb.DuckDBPyConnection, sql: str, where, timeout_s: float = 10.0) -> tuple[list[str], list[tuple]]:
    """One query's column names and rows, interrupted after ``timeout_s``; an SQL error is one line naming
    ``where`` (the store, or a Parquet export)."""
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cur = con.execute(sql)
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.InterruptException:
        raise StreamGazeError(f"query stopped after {timeout_s:g} s") from None
    except duckdb.Error as exc:
        raise StreamGazeError(f"{where}: SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        timer.cancel()
