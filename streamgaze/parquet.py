"""The store as Parquet files, and SQL over such an export.

``export_parquet(store, out)`` writes every table of the store with DuckDB's ``COPY ... (FORMAT parquet)``:

- a table with a ``dataset`` column is Hive-partitioned by it: ``OUT/<table>/dataset=<value>/data_0.parquet``
  (the value URL-encoded; a NULL dataset is ``dataset=__HIVE_DEFAULT_PARTITION__``, which DuckDB and pyarrow read
  back as NULL). The ``dataset`` column lives in the folder name, not in the files;
- every other table is one file, ``OUT/<table>/data_0.parquet``, and so is a table whose ``dataset`` is NULL in
  every row (or that has no rows): with the ``dataset`` column inside the file, as partition folders that are all
  NULL would leave readers (pyarrow) nothing to infer its type from. An empty table is a file with its columns
  and no rows, so every table reads back with its schema.

The export is written to a temporary folder beside ``OUT`` and moved into place when complete: a new ``OUT`` is
renamed in one step; in an existing ``OUT`` each ``<table>`` folder is replaced whole (other files there are left
alone), so a stale partition never survives.

``run_parquet_sql(folder, sql)`` runs one read-only query over such a folder: one view per table folder
(``read_parquet`` with Hive partitioning, ``dataset`` read as text), file access outside the folder off, the
configuration locked, and only SELECT-like statements accepted.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.paths import check_folder, inside
from streamgaze.store import SCHEMA, open_store, run_query

PARTITION_COLUMN = "dataset"
DATA_FILE = "data_0.parquet"


def _columns(table: str) -> list[str]:
    return [c.split()[0] for c in SCHEMA[table].split(", ")]


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


def export_parquet(store_path, out_dir) -> dict[str, int]:
    """Every table of the store as Parquet under ``out_dir`` (see the module); returns rows per table."""
    store_path, out_dir = Path(store_path), Path(out_dir)
    open_store(store_path, read_only=True).close()  # a streamgaze store of this version, or one line
    check_folder(out_dir)
    for table in SCHEMA:
        target = inside(out_dir, table)
        if target.exists() and not target.is_dir():
            raise InputError(target, "is a file; the export writes a folder of Parquet files there")
    tmp = out_dir.absolute().parent / f".{out_dir.name}.parquet.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, int] = {}
    try:
        tmp.mkdir(parents=True)
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH '{_sql_text(store_path.resolve())}' AS s (READ_ONLY)")
            held = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 's'").fetchall()}
            for table in SCHEMA:
                if table not in held:  # a table added later (store.ADDED_TABLES) that this older store lacks
                    con.execute(f"CREATE TEMP TABLE {table} ({SCHEMA[table]})")
                counts[table] = _copy_table(con, table, tmp / table, "s" if table in held else "temp")
        except duckdb.Error as exc:
            raise StreamGazeError(f"{store_path}: Parquet export failed: {str(exc).splitlines()[0]}") from None
        finally:
            con.close()
        _move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def _copy_table(con, table: str, folder: Path, schema: str = "s") -> int:
    cols = _columns(table)
    n = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchall()[0][0]
    select = f"SELECT {', '.join(cols)} FROM {schema}.{table}"
    named = PARTITION_COLUMN in cols and con.execute(
        f"SELECT count({PARTITION_COLUMN}) FROM {schema}.{table}").fetchall()[0][0] > 0
    if named:
        con.execute(f"COPY ({select}) TO '{_sql_text(folder)}' "
                    f"(FORMAT parquet, PARTITION_BY ({PARTITION_COLUMN}), FILENAME_PATTERN 'data_{{i}}')").fetchall()
        return n
    folder.mkdir(parents=True)
    con.execute(f"COPY ({select}) TO '{_sql_text(folder / DATA_FILE)}' (FORMAT parquet)").fetchall()
    return n


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """``tmp``'s table folders into ``out_dir``: one rename for a new folder, else table by table, the old folder
    of each put back if a later step fails."""
    if not out_dir.exists():
        out_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_dir)
        return
    moved: list[tuple[Path, Path | None]] = []
    try:
        for table in sorted(p.name for p in tmp.iterdir()):
            target = out_dir / table
            old = None
            if target.exists():
                old = out_dir / f".{table}.{os.getpid()}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            moved.append((target, old))
            os.replace(tmp / table, target)
    except BaseException:
        for target, old in reversed(moved):
            if target.exists() and old is not None:
                shutil.rmtree(target, ignore_errors=True)
            if old is not None and old.exists():
                os.replace(old, target)
        raise
    for _, old in moved:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


#: statement types a query over an export may be (DESCRIBE, SHOW and SUMMARIZE are SELECTs to DuckDB)
READ_STATEMENTS = ("SELECT", "EXPLAIN")


def parquet_tables(folder) -> dict[str, Path]:
    """table name -> its folder, for every sub-folder of ``folder`` holding Parquet files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such folder of Parquet tables (made by streamgaze export parquet)")
    tables = {p.name: p for p in sorted(folder.iterdir())
              if p.is_dir() and not p.name.startswith(".") and _holds_parquet(p)}
    if not tables:
        raise InputError(folder, "holds no table folders of Parquet files (made by streamgaze export parquet)")
    return tables


def _holds_parquet(folder: Path) -> bool:
    """Parquet files directly in ``folder`` or in its ``key=value`` partition folders (an export's table)."""
    return next(folder.glob("*.parquet"), None) is not None or next(folder.glob("*=*/*.parquet"), None) is not None


def run_parquet_sql(folder, sql: str, timeout_s: float = 10.0) -> tuple[list[str], list[tuple]]:
    """One read-only query over a Parquet export (see the module): column names and rows."""
    folder = Path(folder)
    tables = parquet_tables(folder)
    con = duckdb.connect()
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise StreamGazeError(f"{folder}: SQL error: {str(exc).splitlines()[0]}") from None
        kinds = [s.type.name for s in statements]
        if len(kinds) != 1 or kinds[0] not in READ_STATEMENTS:
            raise StreamGazeError(f"{folder}: give one read-only query (SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN), "
                                  f"not {', '.join(kinds) or 'nothing'}")
        for name, path in tables.items():
            hive = any(p.is_dir() and "=" in p.name for p in path.iterdir())
            options = f", hive_partitioning = true, hive_types = {{'{PARTITION_COLUMN}': VARCHAR}}" if hive else ""
            con.execute(f"CREATE VIEW \"{name.replace(chr(34), chr(34) * 2)}\" AS SELECT * FROM "
                        f"read_parquet('{_sql_text(path.resolve())}/**/*.parquet'{options})")
        con.execute(f"SET allowed_directories = ['{_sql_text(folder.resolve())}/']")
        for setting in ("SET enable_external_access = false", "SET autoload_known_extensions = false",
                        "SET lock_configuration = true"):
            con.execute(setting)
        return run_query(con, sql, folder, timeout_s)
    finally:
        con.close()
