"""Built-in ingest formats (``streamgaze formats`` lists them).

- ``pupil-player``: a Pupil Player export folder, or its ``gaze_positions.csv`` (+ ``world_timestamps.csv``).
- ``ego4d-gaze``: Ego4D ``gaze/<video_uid>.csv`` (Pupil columns, ``canonical_timestamp_s``).
- ``generic-csv``: ``t_s,x,y[,valid]``, seconds from the video start, normalised, origin top left.
- ``actions-csv``: ``t_start,t_end,label`` in seconds.

Pupil's ``norm_pos`` has a **bottom-left origin** (y up), so y = 1 - norm_pos_y for both Pupil formats
(StreamGaze's own Ego4D parser did not flip; we do).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze import hookimpl
from streamgaze.errors import InputError
from streamgaze.ingest import LoadContext, gaze_table, read_csv_columns, read_header, require_file, to_float

#: Pupil samples below this confidence are marked invalid (Pupil Labs' own default threshold).
PUPIL_MIN_CONFIDENCE = 0.6


def _one(ctx: LoadContext, fmt: str) -> Path:
    files = [p for p in ctx.paths]
    if len(files) != 1:
        raise InputError(files[1] if len(files) > 1 else "PATH", f"{fmt} takes exactly one file")
    return files[0]


def _pupil_gaze(path: Path, time_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f64 = pa.float64()
    table = read_csv_columns(path, {time_col: f64, "confidence": f64, "norm_pos_x": f64, "norm_pos_y": f64})
    t = to_float(table[time_col])
    x = to_float(table["norm_pos_x"])
    y = 1.0 - to_float(table["norm_pos_y"])  # bottom-left origin -> top-left
    conf = to_float(table["confidence"])
    with np.errstate(invalid="ignore"):
        valid = conf >= PUPIL_MIN_CONFIDENCE
    return t, x, y, valid


class PupilPlayerLoader:
    """Pupil Player export: folder or gaze_positions.csv; t from world_timestamps.csv; y flipped (bottom-left origin)."""

    name = "pupil-player"

    def default_video_id(self, paths: list[Path]) -> str:
        p = Path(paths[0]).absolute()
        return p.name if p.is_dir() else p.parent.name

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        gaze_path, world_path = None, None
        for p in ctx.paths:
            if p.is_dir():
                gaze_path = p / "gaze_positions.csv"
                world_path = world_path or p / "world_timestamps.csv"
                if ctx.video is None:
                    for cand in ("world.mp4", "video.mp4"):
                        if (p / cand).is_file() and (p / cand).stat().st_size > 0:
                            ctx.video_path = p / cand
                            break
            elif p.name.startswith("world_timestamps"):
                world_path = p
            else:
                gaze_path = p
        if gaze_path is None:
            raise InputError(ctx.paths[0], "no gaze_positions.csv given")
        require_file(gaze_path)
        if world_path is None:
            world_path = gaze_path.parent / "world_timestamps.csv"

        t, x, y, valid = _pupil_gaze(gaze_path, "gaze_timestamp")
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            raise InputError(gaze_path, "time is missing or not a number", row=int(bad[0]) + 2, column="gaze_timestamp")

        if world_path.exists():
            header = read_header(world_path)
            wt = to_float(read_csv_columns(world_path, {header[0]: pa.float64()})[header[0]])
            if not np.isfinite(wt[0]):
                raise InputError(world_path, "first world timestamp is not a number", row=2, column=header[0])
            origin = float(wt[0])
            ctx.notes.append(f"time origin: first world timestamp {origin:.6f} s")
            good = wt[np.isfinite(wt)]
            if good.size >= 2 and np.all(np.diff(good) > 0):
                fps = 1.0 / float(np.median(np.diff(good)))
                # Frame times come from world_timestamps.csv, not the video's pts (they can disagree).
                ctx.video_overrides = {"fps": fps, "duration_s": float(good[-1] - good[0]) + 1.0 / fps}
        else:
            origin = float(t[0])
            ctx.notes.append(f"no {world_path.name} beside the gaze file: time origin is the first gaze timestamp")
        return {"gaze": gaze_table(t - origin, x, y, valid)}


class Ego4DGazeLoader:
    """Ego4D gaze/<video_uid>.csv: canonical_timestamp_s, norm_pos flipped to top-left (y = 1 - norm_pos_y)."""

    name = "ego4d-gaze"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
        header = read_header(path)
        time_col = "canonical_timestamp_s" if "canonical_timestamp_s" in header else "component_timestamp_s"
        t, x, y, valid = _pupil_gaze(path, time_col)
        return {"gaze": gaze_table(t, x, y, valid)}


class GenericCsvLoader:
    """CSV with t_s,x,y[,valid]: seconds from the video start, x/y normalised with a top-left origin."""

    name = "generic-csv"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
        f64 = pa.float64()
        table = read_csv_columns(path, {"t_s": f64, "x": f64, "y": f64}, optional={"valid": pa.bool_()})
        t, x, y = to_float(table["t_s"]), to_float(table["x"]), to_float(table["y"])
        valid = None
        if "valid" in table.column_names:
            valid = np.asarray(pc.fill_null(table["valid"], False).to_numpy(zero_copy_only=False), dtype=bool)
        return {"gaze": gaze_table(t, x, y, valid)}


class ActionsCsvLoader:
    """Action labels: CSV with t_start,t_end,label (seconds from the video start); several files are concatenated."""

    name = "actions-csv"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        tables = []
        for path in ctx.paths:
            require_file(path)
            table = read_csv_columns(
                path, {"t_start": pa.float64(), "t_end": pa.float64(), "label": pa.string()}
            )
            # validated per file so rows in messages are the file's lines
            from streamgaze.ingest import validate_actions

            tables.append(validate_actions(path, table.select(["t_start", "t_end", "label"])))
        table = pa.concat_tables(tables)
        table = table.sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        return {"actions": table}


@hookimpl
def streamgaze_gaze_loaders():
    return {
        "pupil-player": PupilPlayerLoader(),
        "ego4d-gaze": Ego4DGazeLoader(),
        "generic-csv": GenericCsvLoader(),
        "actions-csv": ActionsCsvLoader(),
    }
