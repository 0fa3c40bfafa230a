"""StreamGaze compatibility: the ``streamgaze-metadata`` ingest format (tasks.md 4.1).

The reference's episode metadata CSV has one row per episode: a video key, the episode's start and end (float
seconds), its representative (gazed) object, the other objects inside the FOV crop and those outside it. Cells
holding objects are parsed three ways in turn: JSON; JSON after every ``'`` becomes ``"``; a Python literal
(`ast.literal_eval`, literal-only, never evaluated as code). A dict element gives its ``object_identity``, a
string is taken as is; empty, NaN or ``[]`` means none. Names are stored as written (the engine normalises).

The whole file is parsed and checked before the store is opened: a malformed row (no parser accepts a cell, a
time is missing, end < start) stops the import with one line naming file, row and column (exit 2), and the
store is untouched. Rows are numbered as records: the header is row 1, the first data row row 2.

One CSV may hold many videos, so the CLI calls `ingest_store` (all videos in one transaction); the plain
`Loader` call (`streamgaze.gaze.ingest.ingest`) accepts a file with a single video.
"""
from __future__ import annotations

import ast
import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from streamgaze.plugins.api import InputError, LoadContext, check_text, open_store

VIDEO_COLUMNS = ("video_name", "video_source", "video_id", "source_file")
ROLE_COLUMNS = (
    ("representative_object", "gazed"),
    ("other_objects_in_cropped_area", "fov"),
    ("other_objects_outside_fov", "outside"),
)
LABELLER = "streamgaze-metadata"
_NONE = {"", "nan", "none", "null", "[]", "{}"}


class CellError(ValueError):
    pass


def parse_cell(text: str | None):
    """A cell's value: JSON, else JSON with ``'`` -> ``"``, else a Python literal; None for an empty cell."""
    if text is None or text.strip().lower() in _NONE:
        return None
    text = text.strip()
    for attempt in (lambda: json.loads(text), lambda: json.loads(text.replace("'", '"')), lambda: ast.literal_eval(text)):
        try:
            return attempt()
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    raise CellError("no parser accepts this cell (tried JSON, JSON with ' as \", Python literal)")


def _name_of(element) -> tuple[str, dict] | None:
    """(name, attributes) of one object element: a dict with ``object_identity``, or a plain name."""
    if element is None or (isinstance(element, float) and math.isnan(element)):
        return None
    if isinstance(element, str):
        return (element.strip(), {}) if element.strip() else None
    if isinstance(element, dict):
        name = element.get("object_identity")
        if not isinstance(name, str) or not name.strip():
            raise CellError("an object has no 'object_identity'")
        caption = element.get("detailed_caption")
        return name.strip(), ({"caption": caption} if isinstance(caption, str) and caption else {})
    raise CellError(f"expected an object (dict or name), got {type(element).__name__}")


def objects_of(value) -> list[tuple[str, dict]]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [o for o in (_name_of(v) for v in items) if o is not None]


def _time(text: str | None) -> float | None:
    try:
        t = float(text) if text is not None and text.strip() else None
    except ValueError:
        return None
    return t if t is not None and math.isfinite(t) else None


@dataclass
class Parsed:
    episodes: dict[str, list[tuple[float, float, list[tuple[str, str, dict]]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n_episodes(self) -> int:
        return sum(len(v) for v in self.episodes.values())


def parse_metadata(path: Path) -> Parsed:
    """Read and check the whole CSV (nothing is written)."""
    path = check_text(Path(path))
    out = Parsed()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            return _parse_rows(path, reader, out)
        except csv.Error as exc:
            raise InputError(path, f"cannot read the CSV ({exc})", row=reader.line_num or 1) from None


def _parse_rows(path: Path, reader: csv.DictReader, out: Parsed) -> Parsed:
    n_duration = 0
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise InputError(path, "no header line", row=1)
    reader.fieldnames = header
    vcol = next((c for c in VIDEO_COLUMNS if c in header), None)
    if vcol is None:
        raise InputError(path, f"missing column (one of {', '.join(VIDEO_COLUMNS)}; has: {', '.join(header)})", row=1, column=VIDEO_COLUMNS[0])
    for col in ("episode_start_time", "episode_end_time", "representative_object"):
        if col not in header:
            raise InputError(path, f"missing column (has: {', '.join(header)})", row=1, column=col)
    for i, row in enumerate(reader):
        rownum = i + 2
        video = (row.get(vcol) or "").strip()
        if not video:
            raise InputError(path, "empty video key", row=rownum, column=vcol)
        video_id = Path(video.replace("\\", "/")).stem
        t0, t1 = _time(row.get("episode_start_time")), _time(row.get("episode_end_time"))
        if t0 is None:
            raise InputError(path, "time is missing or not a number", row=rownum, column="episode_start_time")
        if t1 is None:
            raise InputError(path, "time is missing or not a number", row=rownum, column="episode_end_time")
        if t1 < t0:
            raise InputError(path, f"episode ends ({t1}) before it starts ({t0})", row=rownum, column="episode_end_time")
        dur = _time(row.get("duration")) if "duration" in header else None
        if dur is not None and abs(dur - (t1 - t0)) > 0.01:
            n_duration += 1
        objs: list[tuple[str, str, dict]] = []
        for col, role in ROLE_COLUMNS:
            if col not in header:
                continue
            try:
                found = objects_of(parse_cell(row.get(col)))
            except CellError as exc:
                raise InputError(path, str(exc), row=rownum, column=col) from None
            if role == "gazed":
                found = found[:1]
            objs += [(name, role, attrs) for name, attrs in found]
        out.episodes.setdefault(video_id, []).append((t0, t1, objs))
    if not out.episodes:
        raise InputError(path, "no data rows")
    if n_duration:
        out.notes.append(f"warning: {n_duration} rows have a duration that differs from end - start by > 0.01 s")
    return out


def to_tables(parsed: Parsed, dataset: str | None) -> dict[str, pa.Table]:
    """Arrow tables for ``videos`` (missing rows only), ``episodes`` and ``objects``; ids follow t_start per video."""
    ep = {k: [] for k in ("video_id", "episode_id", "t_start", "t_end")}
    ob = {k: [] for k in ("video_id", "episode_id", "name", "role", "attributes", "labeller")}
    vids = {k: [] for k in ("video_id", "dataset", "path", "duration_s")}
    for video_id in sorted(parsed.episodes):
        rows = sorted(parsed.episodes[video_id], key=lambda r: (r[0], r[1]))
        for n, (t0, t1, objs) in enumerate(rows, start=1):
            eid = f"e{n}"
            for k, v in zip(ep, (video_id, eid, t0, t1)):
                ep[k].append(v)
            for name, role, attrs in objs:
                for k, v in zip(ob, (video_id, eid, name, role, json.dumps(attrs, ensure_ascii=False, sort_keys=True), LABELLER)):
                    ob[k].append(v)
        for k, v in zip(vids, (video_id, dataset or "streamgaze", "", max(r[1] for r in rows))):
            vids[k].append(v)
    return {
        "videos": pa.table({"video_id": pa.array(vids["video_id"], pa.string()), "dataset": pa.array(vids["dataset"], pa.string()),
                            "path": pa.array(vids["path"], pa.string()), "duration_s": pa.array(vids["duration_s"], pa.float64())}),
        "episodes": pa.table({"video_id": pa.array(ep["video_id"], pa.string()), "episode_id": pa.array(ep["episode_id"], pa.string()),
                              "t_start": pa.array(ep["t_start"], pa.float64()), "t_end": pa.array(ep["t_end"], pa.float64())}),
        "objects": pa.table({k: pa.array(v, pa.string()) for k, v in ob.items()}),
    }


class StreamGazeMetadataLoader:
    """StreamGaze episode metadata CSV (one row per episode: times, gazed / FOV / outside objects)."""

    name = "streamgaze-metadata"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        if len(ctx.paths) != 1:
            raise InputError(ctx.paths[-1], "streamgaze-metadata takes exactly one file")
        parsed = parse_metadata(ctx.paths[0])
        if len(parsed.episodes) > 1 and ctx.video_id in parsed.episodes:  # a shared file: this video's rows
            parsed.episodes = {ctx.video_id: parsed.episodes[ctx.video_id]}
        if len(parsed.episodes) != 1:
            raise InputError(ctx.paths[0], f"holds {len(parsed.episodes)} videos; import it with `streamgaze ingest streamgaze-metadata`")
        (video_id,) = parsed.episodes
        ctx.video_id = video_id
        ctx.notes += parsed.notes
        tables = to_tables(parsed, ctx.dataset)
        return {"episodes": tables["episodes"].drop_columns(["video_id"]), "objects": tables["objects"].drop_columns(["video_id"])}

    def ingest_store(self, store_path, paths: list[Path], dataset: str | None = None) -> str:
        """Import every video of the CSV(s) in one transaction; the store is opened only after all parsed."""

        parsed = Parsed()
        for p in paths:
            one = parse_metadata(Path(p))
            for vid, rows in one.episodes.items():
                parsed.episodes.setdefault(vid, []).extend(rows)
            parsed.notes += one.notes
        tables = to_tables(parsed, dataset)
        video_ids = sorted(parsed.episodes)
        with open_store(store_path) as store:
            with store.transaction() as con:
                store.replace_video_rows("episodes", video_ids, tables["episodes"])
                store.replace_video_rows("objects", video_ids, tables["objects"])
                con.register("_sg_videos", tables["videos"])
                try:  # a video already in the store (from its gaze or video file) keeps its row
                    con.execute(
                        "INSERT INTO videos (video_id, dataset, path, duration_s) SELECT video_id, dataset, path, duration_s "
                        "FROM _sg_videos WHERE video_id NOT IN (SELECT video_id FROM videos)"
                    )
                finally:
                    con.unregister("_sg_videos")
        n_obj = tables["objects"].num_rows
        line = f"ingested streamgaze-metadata: {len(video_ids)} videos, {parsed.n_episodes} episodes, {n_obj} objects"
        return line + ("; " + "; ".join(parsed.notes) if parsed.notes else "")

