"""Ingest: gaze files, action labels and scene-video metadata into the store.

``ingest(store, fmt, paths, video=..., video_id=..., dataset=...)`` looks up the loader plugin for ``fmt``
(hook ``streamgaze_gaze_loaders``; ``streamgaze formats`` lists them), lets it parse the files into arrow
tables, validates every table, and only then opens the store and replaces the video's rows of those tables
in one transaction. Bad input raises one `InputError` naming the file (and row/column) and leaves the store
file untouched; ingesting the same data twice replaces it.

Rules every loader's output goes through (`validate_gaze`):

- ``t_s`` must be finite; a NaN/empty time is an error naming its row.
- Times must not decrease: a decreasing time is an error naming its row.
- **Duplicate timestamps are dropped** (the first sample at a time is kept, later ones dropped); the summary
  says how many. Devices (Pupil, Ego4D) occasionally repeat a timestamp; keeping both would give zero dt and
  an undefined velocity.
- Invalid samples keep their row with ``valid = false``; ``in_frame`` = 0 <= x <= 1 and 0 <= y <= 1.

Row numbers in messages are **file line numbers** (the header is line 1, the first data row line 2).
"""
from __future__ import annotations

import codecs
import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from streamgaze.errors import InputError, StreamGazeError, shorten
from streamgaze.gaze.video import VideoInfo, probe_video
from streamgaze.plugins.manager import lookup
from streamgaze.store import check_store_path, open_store

#: Bytes read at a time when checking that a file is UTF-8 text.
TEXT_CHUNK = 1 << 20
#: Deepest JSON nesting a loader accepts (annotation files nest 5 or 6 levels).
MAX_JSON_DEPTH = 100
#: pyarrow CSV block size: 1 MB blocks keep both cores busy on a 100 MB file (16 MB blocks: ~1.6x slower).
CSV_BLOCK = 1 << 20

GAZE_COLUMNS = ("video_id", "t_s", "x", "y", "valid", "in_frame")
ACTION_COLUMNS = ("video_id", "t_start", "t_end", "label")


@dataclass(frozen=True)
class GazeUnits:
    """The angular scale of a recording's normalised gaze, when its format knows it: degrees per normalised unit
    of x at the image centre (the scene camera's horizontal extent in degrees, for a pinhole or equidistant
    lens: degrees(width / focal length)), the frame's height / width, and where the numbers come from. Stored
    in ``gaze_units``; `streamgaze.gaze.fixations.run_fixations` uses it instead of the 82 deg assumption."""

    deg_per_unit: float
    aspect: float
    source: str


@dataclass
class LoadContext:
    """What a loader gets: the user's paths, the video id (if already known) and the probed video (if any).

    A loader appends human-readable remarks to ``notes`` (they end up in the summary line), may set
    ``video_id`` when it knows better than the default, and may set ``video_path`` to a video it found
    beside the gaze file (used when ``--video`` was not given). A loader that knows the camera (or screen)
    geometry sets ``units``.
    """

    paths: list[Path]
    video_id: str | None = None
    video: VideoInfo | None = None
    dataset: str | None = None
    notes: list[str] = field(default_factory=list)
    video_path: Path | None = None
    video_overrides: dict = field(default_factory=dict)
    units: GazeUnits | None = None


class Loader(Protocol):
    """An ingest format. The docstring's first line is shown by ``streamgaze formats``.

    ``loader(ctx)`` returns ``{table_name: pyarrow.Table}`` with the store's columns (``gaze(video_id, t_s,
    x, y, valid, in_frame)``, ``actions(video_id, t_start, t_end, label)``, ...). ``video_id`` may be left
    out (ingest fills it); a gaze or actions table that keeps a ``video_id`` column (the file's own) has its rows
    stored under those videos. A loader raises `InputError` for bad files; it never touches the store.
    Optional attribute ``default_video_id(paths) -> str``.
    """

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]: ...


# ---------------------------------------------------------------------------------------------------------
# CSV helpers for loaders (pyarrow.csv; no Python row loops)


def require_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    return path


_TEXT_OK: set = set()


def check_text(path: Path) -> Path:
    """`require_file`, then the file must be UTF-8 text (a BOM is allowed) without NUL bytes and with something
    besides whitespace; else one `InputError` naming the byte and its offset. Checked once per file version."""
    path = require_file(path)
    st = path.stat()
    key = (str(path.absolute()), st.st_size, st.st_mtime_ns)
    if key in _TEXT_OK:
        return path
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, content = 0, False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(TEXT_CHUNK)
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise InputError(path, f"binary file (NUL byte at offset {offset + nul}), expected UTF-8 text")
            pending = decoder.getstate()[0]
            if pending or not chunk.isascii():
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    data = pending + chunk
                    at = offset - len(pending) + exc.start
                    raise InputError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {at}); "
                                           "save it as UTF-8") from None
            if not chunk:
                break
            content = content or bool(chunk.strip(b"\xef\xbb\xbf \t\r\n\x0b\x0c"))
            offset += len(chunk)
    if not content:
        raise InputError(path, "empty file (only whitespace)")
    _TEXT_OK.add(key)
    return path


def read_text(path: Path) -> str:
    """The text of a small file, checked by `check_text` (UTF-8, a BOM dropped)."""
    return check_text(path).read_text(encoding="utf-8-sig")


def read_json(path: Path):
    """A JSON file (`read_text`); bad JSON, or nesting deeper than `MAX_JSON_DEPTH`, is one `InputError`."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", row=exc.lineno) from None
    except RecursionError:
        raise InputError(path, f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)") from None
    stack = [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > MAX_JSON_DEPTH:
            raise InputError(path, f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return data


def read_header(path: Path, delimiter: str = ",") -> list[str]:
    """The header's column names (one line read); the file is checked by `check_text` first."""
    check_text(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            row = next(csv.reader(fh, delimiter=delimiter), None)
        except csv.Error as exc:
            raise InputError(path, f"cannot read the header ({exc})", row=1) from None
    if not row or not any(c.strip() for c in row):
        raise InputError(path, "no header line", row=1)
    return [c.strip() for c in row]


def _arrow_message(exc: Exception) -> str:
    """pyarrow's first error line with quoted values shortened (a huge cell is not echoed whole)."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    msg = re.sub(r"'([^']{60,})'", lambda m: repr(shorten(m.group(1))), msg)
    return shorten(msg, 300)


def read_csv_columns(
    path: Path,
    columns: dict[str, pa.DataType],
    *,
    optional: dict[str, pa.DataType] | None = None,
    rename: dict[str, str] | None = None,
    delimiter: str = ",",
) -> pa.Table:
    """Read the named columns with fixed types; a missing column, bad value or no data row is an `InputError`.

    ``rename`` maps file column names to output names. Empty cells and ``nan`` become nulls.
    """
    header = read_header(path, delimiter)
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(path, f"missing column (has: {shorten(', '.join(header), 200)})", row=1, column=missing[0])
    optional = {k: v for k, v in (optional or {}).items() if k in header}
    types = {**columns, **optional}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=CSV_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(types), column_types=types, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = _arrow_message(exc)
        col, row = None, None
        cm = re.search(r"In CSV column #(\d+)", msg)
        if cm:
            idx = int(cm.group(1))
            col = header[idx] if idx < len(header) else None  # Arrow's index counts the file's columns
            if col in types:
                row = _first_bad_row(path, col, types[col], delimiter)
        msg = re.sub(r"^In CSV column #\d+: ", "", msg)
        raise InputError(path, f"cannot parse: {msg}", row=row, column=col) from None
    if table.num_rows == 0:
        raise InputError(path, "no data rows")
    _no_missing_integers(path, table, columns, 2)
    if rename:
        table = table.rename_columns([rename.get(c, c) for c in table.column_names])
    return table


def read_text_table(
    path: Path,
    names: list[str],
    types: dict[str, pa.DataType],
    *,
    delimiter: str = "\t",
    skip_rows: int = 0,
    header: bool = False,
) -> pa.Table:
    """A delimited file read by position (``names`` for its columns, ``header`` lines skipped) with pyarrow.

    For headerless device exports (HoloAssist, SMI): a row with the wrong number of fields, or a value that
    does not convert, is an `InputError` naming the file line. Columns not in ``types`` are dropped.
    """
    check_text(path)
    bad: list = []

    def on_bad_row(row) -> str:
        bad.append((row.expected_columns, row.actual_columns))  # plain ints: no arrow object outlives the read
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # One thread: the bad-row handler is Python, and arrow's pool calling it from its own threads could
            # abort the interpreter at exit ("terminate called without an active exception", seen once in CI).
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=CSV_BLOCK, column_names=names,
                skip_rows=skip_rows + (1 if header else 0),
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(types), column_types=types, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = _arrow_message(exc)
        col = None
        cm = re.search(r"In CSV column #(\d+)", msg)
        if cm and int(cm.group(1)) < len(names):
            col = names[int(cm.group(1))]
        msg = re.sub(r"^In CSV column #\d+: ", "", msg)
        row = _first_bad_row(path, col, types.get(col), delimiter, names, skip_rows) if col else None
        raise InputError(path, f"cannot parse: {msg}", row=row, column=col) from None
    if bad:
        expected, actual = bad[0]
        raise InputError(path, f"expected {expected} fields, got {actual}",
                         row=_first_short_row(path, len(names), delimiter, skip_rows + (1 if header else 0)))
    if table.num_rows == 0:
        raise InputError(path, "no data rows")
    _no_missing_integers(path, table, types, skip_rows + (1 if header else 0) + 1)
    return table


def _no_missing_integers(path: Path, table: pa.Table, types: dict[str, pa.DataType], first_line: int) -> None:
    """An integer column (timestamps, ticks, indices) has no gaps: an empty or ``nan`` cell, which pyarrow reads as
    null, is an `InputError` naming its line (data row i is line i + ``first_line``)."""
    for name, typ in types.items():
        if pa.types.is_integer(typ) and name in table.column_names and table[name].null_count:
            i = int(np.flatnonzero(np.asarray(pc.is_null(table[name]).to_numpy(zero_copy_only=False)))[0])
            raise InputError(path, "value is missing or not a whole number", row=i + first_line, column=name)


def _first_short_row(path: Path, n_fields: int, delimiter: str, skip: int) -> int | None:
    """Error path only: the file line of the first row without ``n_fields`` fields."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            if i >= skip and line.strip() and line.rstrip("\r\n").count(delimiter) != n_fields - 1:
                return i + 1
    return None


def _first_bad_row(path: Path, col: str, typ: pa.DataType, delimiter: str, names: list[str] | None = None,
                   skip_rows: int = 0) -> int | None:
    """Error path only: the file line of the first value of ``col`` that does not convert to ``typ`` (a file with
    a header line, or, with ``names``, a headerless one whose data start after ``skip_rows`` lines)."""
    try:
        raw = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip_rows, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(include_columns=[col], column_types={col: pa.string()}),
        )[col]
    except pa.ArrowInvalid:
        return None
    first_line = skip_rows + 1 if names else 2
    for i, v in enumerate(raw.to_pylist()):
        if v is None or v.strip() == "":
            continue
        try:
            pa.scalar(v).cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i + first_line
    return None


def to_float(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A float64 numpy array with nulls as NaN (no fill pass when there are no nulls)."""
    if col.type != pa.float64():
        col = pc.cast(col, pa.float64())
    if col.null_count:
        col = pc.fill_null(col, np.nan)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def check_times(path: Path, t: np.ndarray, name: str = "t_s", *, line_offset: int = 2,
                lines: np.ndarray | None = None) -> None:
    """Finite and non-decreasing (line numbers: data row i is line i + ``line_offset``, or ``lines[i]``)."""
    def line(i: int) -> int:
        return int(lines[i]) if lines is not None else i + line_offset

    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise InputError(path, "time is missing or not a number", row=line(int(bad[0])), column=name)
    dec = np.flatnonzero(np.diff(t) < 0)
    if dec.size:
        i = int(dec[0]) + 1
        raise InputError(path, f"time goes backwards ({t[i]:.6f} after {t[i - 1]:.6f})", row=line(i), column=name)


def gaze_table(t_s: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray | None = None) -> pa.Table:
    """The store's gaze columns; ``valid`` also requires finite x and y; ``in_frame`` is 0 <= x, y <= 1."""
    finite = np.isfinite(x) & np.isfinite(y)
    valid = finite if valid is None else (np.asarray(valid, dtype=bool) & finite)
    with np.errstate(invalid="ignore"):
        in_frame = finite & (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
    return pa.table(
        {
            "t_s": pa.array(t_s, pa.float64()),
            "x": pa.array(x, pa.float64(), from_pandas=True),
            "y": pa.array(y, pa.float64(), from_pandas=True),
            "valid": pa.array(valid, pa.bool_()),
            "in_frame": pa.array(in_frame, pa.bool_()),
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Validation of loader output


def validate_gaze(path: Path, table: pa.Table, notes: list[str], lines: np.ndarray | None = None) -> pa.Table:
    """Check and normalise a gaze table: finite, non-decreasing times; duplicates dropped (noted). ``lines``: the
    file line of each row (default: row i is line i + 2)."""
    for c in ("t_s", "x", "y", "valid"):
        if c not in table.column_names:
            raise StreamGazeError(f"loader bug: gaze table lacks column {c!r}")
    t = to_float(table["t_s"])
    check_times(path, t, lines=lines)
    dup = np.zeros(len(t), dtype=bool)
    dup[1:] = np.diff(t) == 0
    n_dup = int(dup.sum())
    if n_dup:
        table = table.filter(pa.array(~dup))
        notes.append(f"dropped {n_dup} duplicate-timestamp samples (kept the first)")
    if "in_frame" not in table.column_names:
        x, y = to_float(table["x"]), to_float(table["y"])
        with np.errstate(invalid="ignore"):
            inf = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
        table = table.append_column("in_frame", pa.array(inf))
    return table


def validate_actions(path: Path, table: pa.Table) -> pa.Table:
    t0, t1 = to_float(table["t_start"]), to_float(table["t_end"])
    for name, t in (("t_start", t0), ("t_end", t1)):
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            raise InputError(path, "time is missing or not a number", row=int(bad[0]) + 2, column=name)
    bad = np.flatnonzero(t1 < t0)
    if bad.size:
        raise InputError(path, "t_end is before t_start", row=int(bad[0]) + 2, column="t_end")
    labels = table["label"]
    empty = np.flatnonzero(~np.asarray(pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(labels)), 0).to_numpy(zero_copy_only=False) > 0))
    if empty.size:
        raise InputError(path, "empty label", row=int(empty[0]) + 2, column="label")
    return table


# ---------------------------------------------------------------------------------------------------------


def video_groups(path: Path, table: pa.Table) -> dict[str, np.ndarray] | None:
    """The rows of each video named by a table's ``video_id`` column (row indices, in file order), or None when the
    table has no such column. An empty id is an `InputError` naming its line (row i is line i + 2)."""
    if "video_id" not in table.column_names:
        return None
    ids = pc.utf8_trim_whitespace(pc.fill_null(pc.cast(table["video_id"], pa.string()), ""))
    arr = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    empty = np.flatnonzero(arr == "")
    if empty.size:
        raise InputError(path, "empty video_id", row=int(empty[0]) + 2, column="video_id")
    names, inverse = np.unique(arr, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
    return {str(n): idx for n, idx in zip(names, np.split(order, bounds))}


def _few(ids) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return ", ".join(repr(shorten(i, 40)) for i in ids[:5]) + more


def held_videos(store_path: str | Path, video_ids) -> set[str]:
    """Which of ``video_ids`` the store holds (a ``videos`` row or gaze rows); read-only, nothing is written."""
    if not Path(store_path).exists():  # a new store holds no video
        return set()
    with open_store(store_path, read_only=True) as store:  # a path that cannot be a store is one line here
        rows = store.con.execute(
            "SELECT video_id FROM videos WHERE video_id IN (SELECT unnest(?)) "
            "UNION SELECT DISTINCT video_id FROM gaze WHERE video_id IN (SELECT unnest(?))",
            [list(video_ids), list(video_ids)],
        ).fetchall()
    return {r[0] for r in rows}


def _with_video_id(table: pa.Table, video_id: str) -> pa.Table:
    if "video_id" in table.column_names:
        table = table.drop_columns(["video_id"])
    # one constant column, filled in C++ (a Python list of n strings costs ~50 ns a row)
    return table.add_column(0, "video_id", pc.fill_null(pa.nulls(table.num_rows, pa.string()), video_id))


def videos_table(video_id: str, dataset: str, info: VideoInfo, overrides: dict | None = None) -> pa.Table:
    """The ``videos`` row of a probed video; a loader's ``video_overrides`` (frame times from its own file) win."""
    fps, n_frames, duration = info.fps, info.n_frames, info.duration_s
    ov = overrides or {}
    if ov.get("fps"):
        fps = ov["fps"]
        duration = ov.get("duration_s", n_frames / fps)
    return pa.table(
        {
            "video_id": [video_id],
            "dataset": [dataset],
            "path": [str(info.path)],
            "fps": pa.array([fps], pa.float64()),
            "width": pa.array([info.width], pa.int32()),
            "height": pa.array([info.height], pa.int32()),
            "duration_s": pa.array([duration], pa.float64()),
            "n_frames": pa.array([n_frames], pa.int32()),
        }
    )


def _default_video_id(loader, paths: list[Path], video: Path | None) -> str:
    if video is not None:
        return Path(video).stem
    fn = getattr(loader, "default_video_id", None)
    if fn is not None:
        return fn(paths)
    p = Path(paths[0]).absolute()
    return p.name if p.is_dir() else p.parent.name


def get_loader(fmt: str):
    return lookup("gaze_loaders", fmt).obj


def ingest(
    store_path: str | Path,
    fmt: str,
    paths: list[Path],
    *,
    video: str | Path | None = None,
    video_id: str | None = None,
    dataset: str | None = None,
    allow_unknown_videos: bool = False,
) -> str:
    """Parse ``paths`` in format ``fmt`` (and probe ``video``), validate, then write all tables at once.

    Actions, and rows a ``video_id`` column assigns, must belong to a video the store holds (its ``videos`` row
    or gaze) or to the one this call writes; else an `InputError` lists the unknown ids, unless
    ``allow_unknown_videos``.

    Returns a one-line summary: rows per table, video id, gaze rate (from the median dt), fraction valid.
    """
    check_store_path(store_path)
    prepared = prepare(store_path, fmt, paths, video=video, video_id=video_id, dataset=dataset,
                       allow_unknown_videos=allow_unknown_videos)
    with open_store(store_path) as store:
        with store.transaction():
            write_prepared(store, prepared)
    return prepared.summary()


@dataclass
class Prepared:
    """One ingest's validated tables, ready to write: ``tables[name]`` replaces the rows of ``ids_of[name]``."""

    fmt: str
    video_id: str
    tables: dict[str, pa.Table]
    ids_of: dict[str, list[str]]
    notes: list[str]
    video: VideoInfo | None = None

    def summary(self) -> str:
        return _summary(self.fmt, self.video_id, self.tables, self.notes)


def write_prepared(store, prepared: Prepared) -> None:
    """Replace the rows of a `Prepared` ingest (call inside ``store.transaction()``)."""
    for name, table in prepared.tables.items():
        store.replace_video_rows(name, prepared.ids_of[name], table)


def prepare(
    store_path: str | Path | None,
    fmt: str,
    paths: list[Path],
    *,
    video: str | Path | None = None,
    video_id: str | None = None,
    dataset: str | None = None,
    allow_unknown_videos: bool = False,
    info: VideoInfo | None = None,
    loader=None,
) -> Prepared:
    """Everything `ingest` does before opening the store for writing: parse, probe, validate. ``store_path``
    is only read (to know which videos it holds) and may be None with ``allow_unknown_videos``; a probed
    ``info`` may stand in for ``video``; a ``loader`` already looked up saves the plugin registry's look-up."""
    loader = loader or get_loader(fmt)
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("PATH", "no input files given")
    for p in paths:
        if not p.exists():
            raise InputError(p, "no such file or folder")
    if info is None and video is not None:
        info = probe_video(video)
    vid = video_id or _default_video_id(loader, paths, info.path if info else None)
    ctx = LoadContext(paths=paths, video_id=vid, video=info, dataset=dataset)
    tables = loader(ctx)
    if info is None and ctx.video_path is not None:
        info = probe_video(ctx.video_path)
        ctx.notes.append(f"video {ctx.video_path.name} found beside the gaze file")
    vid = ctx.video_id or vid
    src = paths[0]

    # a loader may keep a video_id column (one file, many videos): rows go to their own videos
    out: dict[str, pa.Table] = {}
    ids_of: dict[str, list[str]] = {}
    from_column: set[str] = set()
    for name, table in tables.items():
        groups = video_groups(src, table) if name in ("gaze", "actions") else None
        if groups is None:
            if name == "gaze":
                table = validate_gaze(src, table, ctx.notes)
            elif name == "actions":
                table = validate_actions(src, table)
            out[name], ids_of[name] = _with_video_id(table, vid), [vid]
            continue
        if video_id is not None:  # --video-id picks that video's rows
            if video_id not in groups:
                raise InputError(src, f"no rows of video {video_id!r} (its video_id column has {len(groups)} "
                                      f"videos: {_few(groups)})", column="video_id")
            groups = {video_id: groups[video_id]}
        parts = []
        for v, idx in groups.items():
            sub = table.take(pa.array(idx)).drop_columns(["video_id"])
            if name == "gaze":
                sub = validate_gaze(src, sub, ctx.notes, lines=idx + 2)
            else:
                sub = validate_actions(src, sub).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
            parts.append(_with_video_id(sub, v))
        out[name], ids_of[name] = pa.concat_tables(parts), sorted(groups)
        from_column.add(name)
    if from_column:
        named = sorted({v for n in from_column for v in ids_of[n]})
        if len(named) == 1:
            vid = named[0]
            for n in ids_of:
                if n not in from_column:  # a table without the column (none today) follows the one video
                    out[n], ids_of[n] = _with_video_id(out[n].drop_columns(["video_id"]), vid), [vid]
        elif info is not None:
            raise InputError(src, f"--video is one video but the file holds {len(named)} (video_id column: "
                                  f"{_few(named)}); ingest it without --video, or pick one with --video-id")

    # actions (and gaze rows keyed by a video_id column) must belong to a video the store holds
    wanted = set(ids_of.get("actions", [])) | {v for n in from_column for v in ids_of[n]}
    if wanted and not allow_unknown_videos:
        made = {vid} if (info is not None or ("gaze" in out and "gaze" not in from_column)) else set()
        unknown = wanted - made - held_videos(store_path, wanted - made)
        if unknown:
            what = "actions" if "actions" in out else "rows"
            raise InputError(src, f"{what} for {len(unknown)} video(s) the store {Path(store_path).name} does not "
                                  f"hold: {_few(unknown)}; ingest their gaze or video first, or pass "
                                  "--allow-unknown-videos")
    if "gaze" in out:  # always written, so a re-ingest in a format without units drops stale ones
        u, gids = ctx.units, ids_of["gaze"]
        n = len(gids) if u else 0
        ids_of["gaze_units"] = gids
        out["gaze_units"] = pa.table({
            "video_id": pa.array(gids[:n], pa.string()),
            "deg_per_unit": pa.array([u.deg_per_unit] * n if u else [], pa.float64()),
            "aspect": pa.array([u.aspect] * n if u else [], pa.float64()),
            "source": pa.array([u.source] * n if u else [], pa.string()),
        })
        if u:
            ctx.notes.append(f"{u.deg_per_unit:.1f} deg per frame width ({u.source})")

    if info is not None:
        ids_of["videos"] = [vid]
        out["videos"] = videos_table(vid, dataset or fmt, info, ctx.video_overrides)
    if not out:
        raise InputError(src, f"format {fmt!r} produced no data")

    label = vid
    if from_column and len({v for n in from_column for v in ids_of[n]}) > 1:
        label = f"{len({v for n in from_column for v in ids_of[n]})} videos (video_id column)"
    return Prepared(fmt, label, out, ids_of, ctx.notes, info)


def _summary(fmt: str, vid: str, out: dict[str, pa.Table], notes: list[str]) -> str:
    parts = [f"{name} {t.num_rows} rows" for name, t in out.items() if name != "gaze_units"]
    if "gaze" in out and out["gaze"].num_rows:
        g = out["gaze"]
        t = to_float(g["t_s"])
        dt = np.diff(t)
        rate = f"{1.0 / np.median(dt):.1f} Hz" if dt.size and np.median(dt) > 0 else "n/a"
        valid = float(np.mean(g["valid"].to_numpy(zero_copy_only=False)))
        parts.append(f"gaze rate {rate} (median dt), {valid:.1%} valid")
    line = f"ingested {fmt} as video {vid!r}: " + ", ".join(parts)
    if vid.endswith("(video_id column)"):
        line = f"ingested {fmt} as {vid}: " + ", ".join(parts)
    if notes:
        line += "; " + "; ".join(notes)
    return line
