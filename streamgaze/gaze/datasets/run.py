"""``streamgaze ingest-dataset``: every recording of a dataset folder into the store, each whole or not at all.

Recordings are parsed (hashed, read by their loaders, validated, checked) by worker processes (``jobs``; one job
parses in this process) and written by this process alone, one transaction per recording. A recording whose
source files have the hashes stored for it (``recording_sources``) is skipped; one whose files changed replaces its
rows in one transaction; one that fails costs one line and leaves the store as it was for that recording.
"""
from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.errors import StreamGazeError
from streamgaze.gaze.datasets.checks import WARNING_SEPARATOR, checks_table, measure, warnings_for
from streamgaze.gaze.datasets.discovery import Discovery, Recording
from streamgaze.gaze.datasets.recipes import Recipe
from streamgaze.gaze.ingest import get_loader, prepare, videos_table
from streamgaze.gaze.video import probe_video
from streamgaze.plugins.manager import registry
from streamgaze.progress import stage
from streamgaze.store import open_store

#: Files up to this size are hashed whole; a bigger one (a long video) by its size, head and tail.
WHOLE_HASH_LIMIT = 64 << 20
SAMPLE_BYTES = 8 << 20
#: Per-video tables a recording's rows live in: a re-ingested recording's old rows go from all of them.
RECORDING_TABLES = ("gaze", "gaze_units", "videos", "actions", "recording_checks", "recording_sources")


def file_hash(path: Path) -> tuple[int, str]:
    """``(size, blake2b hex)`` of a file: whole up to `WHOLE_HASH_LIMIT`, else size + first and last 8 MB."""
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if size <= WHOLE_HASH_LIMIT:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        else:
            h.update(str(size).encode())
            h.update(fh.read(SAMPLE_BYTES))
            fh.seek(size - SAMPLE_BYTES)
            h.update(fh.read(SAMPLE_BYTES))
    return size, h.hexdigest()


@dataclass
class Job:
    """What a worker needs to parse one recording (picklable)."""

    recipe: Recipe
    recording: Recording
    known: frozenset | None  # the stored (role, path, size, hash) rows of this recording, if any
    root: Path | None = None  # paths are stored relative to it: a moved dataset folder is not "changed"


@dataclass
class Outcome:
    """One recording's result: ``ok`` (tables to write), ``unchanged`` or ``failed`` (``error``)."""

    video_id: str
    status: str
    tables: dict[str, pa.Table] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    video_path: str | None = None  # where the video is now (an unchanged recording may have moved with its folder)


def parse_recording(job: Job) -> Outcome:
    """Hash, read and check one recording (in a worker process); never touches the store."""
    rec, recipe = job.recording, job.recipe
    try:
        sources = []
        for sf in rec.all_files():
            size, digest = file_hash(sf.path)
            role = sf.rule.role
            path = sf.path.relative_to(job.root).as_posix() if job.root else str(sf.path.absolute())
            sources.append((role, path, size, digest))
        if job.known is not None and frozenset(sources) == job.known:
            video = rec.first("video")
            return Outcome(rec.id, "unchanged", video_path=str(video.path.absolute()) if video else None)
        return _parse(rec, recipe, sources)
    except StreamGazeError as exc:
        return Outcome(rec.id, "failed", error=str(exc))
    except OSError as exc:
        return Outcome(rec.id, "failed", error=f"{exc.filename}: {exc.strerror or exc}")
    except Exception as exc:  # a loader bug costs its recording, not the whole dataset
        return Outcome(rec.id, "failed", error=f"unexpected {type(exc).__name__}: {exc}")


_LOADERS: dict[str, object] = {}


def _loader(fmt: str):
    """The loader of ``fmt``, looked up once per process (the registry call walks every plugin)."""
    if fmt not in _LOADERS:
        _LOADERS[fmt] = get_loader(fmt)
    return _LOADERS[fmt]


def _parse(rec: Recording, recipe: Recipe, sources: list[tuple]) -> Outcome:
    vid, dataset = rec.id, recipe.name
    video = rec.first("video")
    info = probe_video(video.path) if video else None
    extras = rec.files.get("extra", [])
    tables: dict[str, pa.Table] = {}
    gaze = rec.first("gaze")
    if gaze is not None:
        paths = [gaze.path] + [e.path for e in extras if e.rule.pass_to == "gaze"]
        prepared = prepare(None, gaze.rule.format, paths, info=info, video_id=vid, dataset=dataset,
                           allow_unknown_videos=True, loader=_loader(gaze.rule.format))
        tables.update(prepared.tables)
    elif info is not None:
        tables["videos"] = videos_table(vid, dataset, info)
    by_format: dict[str, list[Path]] = {}
    for sf in rec.files.get("annotations", []):
        by_format.setdefault(sf.rule.format, []).append(sf.path)
    for fmt, paths in sorted(by_format.items()):
        paths += [e.path for e in extras if e.rule.pass_to == "annotations"]
        prepared = prepare(None, fmt, paths, video_id=vid, dataset=dataset, allow_unknown_videos=True,
                           loader=_loader(fmt))
        for name, table in prepared.tables.items():
            if name == "videos" and "videos" in tables:
                continue
            tables[name] = pa.concat_tables([tables[name], table]) if name in tables else table
    v = tables.get("videos")
    fps = v["fps"][0].as_py() if v is not None else None
    duration = v["duration_s"][0].as_py() if v is not None else None
    n_frames = v["n_frames"][0].as_py() if v is not None else None
    m = measure(tables.get("gaze"), fps, duration, n_frames)
    warns = warnings_for(m, recipe, rec.warnings)
    tables["recording_checks"] = checks_table(vid, dataset, m, warns)
    role, path, size, digest = zip(*sources) if sources else ((),) * 4
    n = len(role)
    tables["recording_sources"] = pa.table({
        "video_id": pa.array([vid] * n, pa.string()), "dataset": pa.array([dataset] * n, pa.string()),
        "role": pa.array(role, pa.string()), "path": pa.array(path, pa.string()),
        "size": pa.array(size, pa.int64()), "hash": pa.array(digest, pa.string()),
    })
    # the id as a dictionary column: one string per table instead of one per row, to pickle and for DuckDB to read
    tables = {name: _dictionary_ids(t) for name, t in tables.items()}
    return Outcome(vid, "ok", tables, m, warns)


def _dictionary_ids(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("video_id")
    if i < 0 or table.num_rows < 2 or pa.types.is_dictionary(table.schema.field(i).type):
        return table
    return table.set_column(i, "video_id", pc.dictionary_encode(table["video_id"]))


def _known_sources(store, dataset: str) -> tuple[dict[str, frozenset], set[str]]:
    """The stored source rows per recording of ``dataset``, and every video id the store holds."""
    con = store.con
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'main' AND table_catalog = current_database()").fetchall()}
    known: dict[str, set] = {}
    if "recording_sources" in tables:
        for vid, role, path, size, digest in con.execute(
                "SELECT video_id, role, path, size, hash FROM recording_sources WHERE dataset = ?", [dataset]).fetchall():
            known.setdefault(vid, set()).add((role, path, size, digest))
    held = {r[0] for r in con.execute("SELECT video_id FROM videos UNION SELECT DISTINCT video_id FROM gaze").fetchall()}
    return {k: frozenset(v) for k, v in known.items()}, held


def _write(store, batch: list[Outcome], held: set[str]) -> None:
    """Parsed recordings' rows in one transaction (their old rows first, where the store held the video).

    Every recording in ``batch`` is already validated, so the batch commits whole; one commit per batch instead of
    per recording is what makes a dataset of short recordings fast. `_flush` writes them one by one if it fails."""
    ids = [o.video_id for o in batch]
    again = [v for v in ids if v in held]
    with store.transaction() as con:
        if again:
            names = set(RECORDING_TABLES) | {n for o in batch for n in o.tables}
            for table in sorted(names):
                con.execute(f"DELETE FROM {table} WHERE video_id IN (SELECT unnest(?))", [again])
        for name in sorted({n for o in batch for n in o.tables}):
            parts = [o.tables[name] for o in batch if name in o.tables]
            try:  # one insert per table: DuckDB appends one large arrow table faster than many small ones
                parts = [pa.concat_tables(parts, promote_options="permissive")]
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # loaders that disagree on a column's type
                pass
            for table in parts:
                store.insert(name, table)
    held.update(ids)


#: A write batch ends at this many recordings or gaze rows (whichever comes first).
BATCH_RECORDINGS = 16
BATCH_ROWS = 1_000_000


def ingest_dataset(recipe: Recipe, found: Discovery, store_path: Path, *, jobs: int = 1,
                   on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Parse every complete recording of ``found`` (``jobs`` processes) and write them from this process.

    Returns one `Outcome` per recording, in recording order. Raises only for a store that cannot be opened.
    """
    outcomes: dict[str, Outcome] = {}
    batch: list[Outcome] = []
    parallel = jobs > 1 and len(found.complete) > 1
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(_worker_pool(jobs)) if parallel else None  # before the store is opened
        store = stack.enter_context(open_store(store_path))
        known, held = _known_sources(store, recipe.name) if Path(store_path).exists() else ({}, set())
        jobs_list = [Job(recipe, rec, known.get(rec.id), found.root) for rec in found.complete]

        def finish(outcome: Outcome) -> None:
            outcome.tables = {}  # written (or failed): free the rows
            outcomes[outcome.video_id] = outcome
            if on_outcome:
                on_outcome(outcome)
            advance(1)

        def flush() -> None:
            if not batch:
                return
            try:
                _write(store, batch, held)
            except StreamGazeError:
                for outcome in batch:  # one by one: only the recording that cannot be written fails
                    try:
                        _write(store, [outcome], held)
                    except StreamGazeError as exc:
                        outcome.status, outcome.error = "failed", str(exc)
            for outcome in batch:
                finish(outcome)
            batch.clear()

        def done(outcome: Outcome) -> None:
            if outcome.status != "ok":
                finish(outcome)
                return
            batch.append(outcome)
            rows = sum(o.checks.get("n_gaze") or 0 for o in batch)
            if len(batch) >= BATCH_RECORDINGS or rows >= BATCH_ROWS:
                flush()

        with stage("recordings", total=len(jobs_list)) as advance:
            if pool is None:
                for job in jobs_list:
                    done(parse_recording(job))
            else:
                pending = set()
                # enough in flight that the workers keep parsing while the writer commits a whole batch; few
                # enough that parsed recordings waiting for the writer stay a few tens of MB
                window = 2 * BATCH_RECORDINGS + 2 * jobs
                for job in jobs_list:
                    pending.add(pool.submit(parse_recording, job))
                    if len(pending) >= window:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            done(f.result())
                for f in wait(pending).done:
                    done(f.result())
            flush()
        unchanged = [v for v, o in outcomes.items() if o.status == "unchanged"]
        _follow_moved_videos(store, [outcomes[v] for v in unchanged])
        if unchanged:  # the summary shows their stored checks
            for row in store.rows("SELECT * FROM recording_checks WHERE video_id IN (SELECT unnest(?)) AND dataset = ?",
                                  [unchanged, recipe.name]):
                o = outcomes[row["video_id"]]
                o.checks = {k: v for k, v in row.items() if k not in ("video_id", "dataset", "warnings")}
                o.warnings = [w for w in (row["warnings"] or "").split(WARNING_SEPARATOR) if w]
    return [outcomes[rec.id] for rec in found.complete]


def _follow_moved_videos(store, unchanged: list[Outcome]) -> None:
    """Point ``videos.path`` of unchanged recordings at where their video is now (the dataset folder was moved);
    nothing is written when no path changed."""
    now = {o.video_id: o.video_path for o in unchanged if o.video_path}
    if not now:
        return
    stored = dict(store.con.execute("SELECT video_id, path FROM videos WHERE video_id IN (SELECT unnest(?))",
                                    [list(now)]).fetchall())
    moved = [(path, vid) for vid, path in sorted(now.items()) if vid in stored and stored[vid] != path]
    if moved:
        with store.transaction() as con:
            con.executemany("UPDATE videos SET path = ? WHERE video_id = ?", moved)


def _warm_worker() -> None:
    """A worker's first act: load the loaders and run one pyarrow compute kernel (its first call imports pandas,
    about half a second), before any recording is timed against it."""
    registry("gaze_loaders")
    pc.fill_null(pa.array([None], pa.string()), "")
    pa.set_cpu_count(1)  # the workers are the parallelism: one arrow thread each, no oversubscription


def _ready() -> bool:
    return True


def _worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` worker processes, all started now. On Linux they are forked from this process, which has imported
    everything already (a fresh interpreter per worker costs seconds on a loaded machine); they are forked before
    the store is opened, so no DuckDB thread or lock is copied into them. Elsewhere they are spawned."""
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_warm_worker)
    try:
        for f in wait([pool.submit(_ready) for _ in range(jobs)]).done:
            f.result()
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    return pool
