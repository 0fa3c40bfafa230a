"""Merging stores: the stores of a sharded ``objects`` or ``generate`` (each made from a copy of one store) into one.

Every table is cut into units: a table with a ``video_id`` column per video (``qa_items`` and ``qa_skips`` per
video and task), ``predictions`` per run, question and point, ``reviews`` per reviewer, question, point, mode and
time, ``meta`` per key. For each unit:

- **owned units**: a store whose last ``objects --shard K/N`` (or ``generate --shard K/N``) run covered the video
  (noted in its ``meta`` table, `streamgaze.shards.record_shard`) owns that video's ``objects`` and
  ``label_requests`` rows (``qa_items`` and ``qa_skips`` rows of the tasks it generated): its rows are taken, also
  when it has none (the shard found no object or made no question there) and other stores still hold older rows.
  Two stores owning the same unit must agree;
- **every other unit** must be equal in every store that holds rows of it (compared by row count and a sum of
  64-bit row hashes) or held by one store only: equal rows are taken once, different rows are refused with one
  line naming the table, the unit and two stores.

The merged store holds no shard notes (the shards are joined). Rows are copied by DuckDB (``ATTACH`` read-only,
``INSERT ... SELECT``), one table at a time, into a new file that is renamed into place at the end.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from streamgaze.errors import InputError
from streamgaze.merge import staged_output
from streamgaze.progress import stage
from streamgaze.shards import Shard, meta_key
from streamgaze.store import SCHEMA, SCHEMA_VERSION, open_store

#: table -> the stage whose sharded run owns its rows of the videos of its shard
OWNED_BY = {"objects": "objects", "label_requests": "objects", "qa_items": "generate", "qa_skips": "generate"}
#: table -> the columns of one unit (tables not listed here and holding a video_id column: per video)
UNITS = {
    "meta": ["key"],
    "predictions": ["run_id", "prompt_style", "question_id", "point_idx"],
    "reviews": ["reviewer", "question_id", "point_idx", "mode", "created_at"],
    "qa_items": ["video_id", "task"],
    "qa_skips": ["video_id", "task"],
}


def table_columns(table: str) -> list[str]:
    return [c.split()[0] for c in SCHEMA[table].split(", ")]


def unit_columns(table: str) -> list[str]:
    cols = table_columns(table)
    return UNITS.get(table) or (["video_id"] if "video_id" in cols else cols)


def _owned(path: Path, con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, tuple[Shard, dict]]:
    """The store's shard notes: stage -> (shard, details)."""
    out = {}
    for stage_name in set(OWNED_BY.values()):
        rows = con.execute(f"SELECT value FROM {alias}.meta WHERE key = ?", [meta_key(stage_name)]).fetchall()
        if not rows:
            continue
        row = rows[0]
        try:
            details = json.loads(row[0])
            out[stage_name] = (Shard.parse(details["shard"]), details)
        except (ValueError, KeyError, TypeError):
            raise InputError(path, f"meta row {meta_key(stage_name)!r} is not a shard note: {row[0]!r}") from None
    return out


def _owns(note: tuple[Shard, dict] | None, table: str, unit: tuple) -> bool:
    if note is None:
        return False
    shard, details = note
    if not shard.holds(unit[0]):
        return False
    if table in ("qa_items", "qa_skips"):
        return unit[1] in (details.get("tasks") or ())
    return True


def merge_stores(inputs: list[Path], out: Path) -> str:
    for p in inputs:  # each a streamgaze store of this schema version (one line if not)
        open_store(p, read_only=True).close()
    with staged_output(out, folder=False) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            counts = _merge_into(con, inputs)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    shown = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
    return f"{out}: merged {len(inputs)} stores ({shown or 'no rows'})"


def _merge_into(con: duckdb.DuckDBPyConnection, inputs: list[Path]) -> dict[str, int]:
    aliases = [f"in{i}" for i in range(len(inputs))]
    for alias, path in zip(aliases, inputs):
        con.execute(f"ATTACH '{_quoted(path)}' AS {alias} (READ_ONLY)")
    notes = [_owned(p, con, a) for p, a in zip(inputs, aliases)]
    present = {a: {r[0]: {c[0] for c in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_name = ?", [a, r[0]]).fetchall()}
        for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [a]).fetchall()}
        for a in aliases}
    # choose every unit's source before anything is copied: a refusal comes before the first row is written
    plans: dict[str, dict[str, list[tuple]]] = {}
    with stage("merge", total=len(SCHEMA)) as advance:
        for table in SCHEMA:
            plans[table] = _plan(con, table, inputs, aliases, notes, present)
            advance(1)
    counts = {}
    con.execute("BEGIN TRANSACTION")
    for table in SCHEMA:
        con.execute(f"CREATE TABLE {table} ({SCHEMA[table]})")
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    for table in SCHEMA:
        counts[table] = _copy(con, table, aliases, plans[table], present)
    con.execute("COMMIT")
    counts.pop("meta", None)
    return counts


def _quoted(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


def _digests(con, table: str, alias: str, present: dict) -> dict[tuple, tuple[int, int]]:
    """unit -> (rows, sum of row hashes) of one input's table."""
    have = present[alias].get(table)
    if have is None:
        return {}
    units = unit_columns(table)
    cols = ", ".join(c if c in have else "NULL" for c in table_columns(table))
    where = " WHERE key <> 'schema_version' AND key NOT LIKE 'shard:%'" if table == "meta" else ""
    rows = con.execute(f"SELECT {', '.join(units)}, count(*), sum(hash({cols})::HUGEINT) FROM {alias}.{table}{where} "
                       f"GROUP BY ALL").fetchall()
    return {tuple(r[:-2]): (int(r[-2]), int(r[-1])) for r in rows}


def _plan(con, table: str, inputs, aliases, notes, present) -> dict[str, list[tuple]]:
    """alias -> the units of ``table`` copied from that input, by the module's rules."""
    digests = [_digests(con, table, a, present) for a in aliases]
    stage_name = OWNED_BY.get(table)
    units = sorted({u for d in digests for u in d}, key=lambda u: tuple((v is None, str(v)) for v in u))
    owned_units: set[tuple] = set()
    if stage_name is not None:  # an owner's unit counts even where that store has no rows
        for i, note in enumerate(notes):
            if note.get(stage_name) is None:
                continue
            held = con.execute(f"SELECT DISTINCT video_id FROM {aliases[i]}.videos").fetchall()
            if table in ("qa_items", "qa_skips"):
                tasks = note[stage_name][1].get("tasks") or []
                owned_units |= {(v, t) for (v,) in held for t in tasks if note[stage_name][0].holds(v)}
            else:
                owned_units |= {(v,) for (v,) in held if note[stage_name][0].holds(v)}
        units = sorted(set(units) | owned_units, key=lambda u: tuple((v is None, str(v)) for v in u))
    plan: dict[str, list[tuple]] = {a: [] for a in aliases}
    for unit in units:
        owners = [i for i in range(len(aliases)) if stage_name and _owns(notes[i].get(stage_name), table, unit)]
        holders = owners or [i for i, d in enumerate(digests) if unit in d]
        if not holders:
            continue
        first = holders[0]
        for other in holders[1:]:
            if digests[other].get(unit) != digests[first].get(unit):
                what = "own" if owners else "hold"
                raise InputError(inputs[other], f"table {table}, {_unit_text(table, unit)}: holds other rows than "
                                 f"{inputs[first]}, and both {what} them; merge the stores of one sharded run "
                                 "(each made from a copy of the same store)")
        if unit in digests[first]:
            plan[aliases[first]].append(unit)
    return plan


def _unit_text(table: str, unit: tuple) -> str:
    return ", ".join(f"{c} {v!r}" for c, v in zip(unit_columns(table), unit))


def _copy(con, table: str, aliases, plan: dict[str, list[tuple]], present) -> int:
    cols = table_columns(table)
    units = unit_columns(table)
    n = 0
    for alias in aliases:
        chosen = plan[alias]
        if not chosen:
            continue
        have = present[alias][table]
        select = ", ".join(f"t.{c}" if c in have else f"NULL AS {c}" for c in cols)
        keys = pa.table({f"u{i}": pa.array([u[i] for u in chosen], _arrow_type(table, c)) for i, c in enumerate(units)})
        con.register("_units", keys)
        try:
            on = " AND ".join(f"t.{c} IS NOT DISTINCT FROM k.u{i}" for i, c in enumerate(units))
            where = " WHERE t.key <> 'schema_version' AND t.key NOT LIKE 'shard:%'" if table == "meta" else ""
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {alias}.{table} t "
                        f"SEMI JOIN _units k ON {on}{where}")
        finally:
            con.unregister("_units")
        n += len(chosen)
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] if table != "meta" else 0


def _arrow_type(table: str, column: str):
    kind = dict(c.split()[:2] for c in SCHEMA[table].split(", "))[column]
    return {"INTEGER": pa.int32(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us"), "BOOLEAN": pa.bool_()}.get(kind, pa.string())
