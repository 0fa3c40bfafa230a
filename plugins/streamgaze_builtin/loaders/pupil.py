"""Pupil Labs: ``pupil-player`` (a Pupil Player export) and ``pupil-cloud`` (a Pupil Cloud Neon/Invisible
``gaze.csv``).

Pupil's ``norm_pos`` has a **bottom-left origin** (y up), so y = 1 - norm_pos_y (`pupil_gaze`, also read by
``ego4d-gaze``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.plugins.api import (
    InputError,
    LoadContext,
    gaze_table,
    read_csv_columns,
    read_header,
    read_json,
    require_file,
    to_float,
)
from streamgaze_builtin.loaders.common import lens_units

#: Pupil samples below this confidence are marked invalid (Pupil Labs' own default threshold).
PUPIL_MIN_CONFIDENCE = 0.6


def pupil_gaze(path: Path, time_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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

        t, x, y, valid = pupil_gaze(gaze_path, "gaze_timestamp")
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


# Pupil Cloud (Neon / Invisible) gaze.csv

#: Scene-camera size assumed when no video is given: Neon's 1600 x 1200 (Invisible is 1088 x 1080).
PUPIL_CLOUD_DEFAULT_SIZE = (1600, 1200)


class PupilCloudLoader:
    """Pupil Cloud gaze.csv: timestamp [ns], gaze x/y [px] in the scene camera (size from --video, else Neon's)."""

    name = "pupil-cloud"

    def default_video_id(self, paths: list[Path]) -> str:
        p = Path(paths[0]).absolute()
        return p.name if p.is_dir() else p.parent.name

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        p = ctx.paths[0]
        path = require_file(p / "gaze.csv" if p.is_dir() else p)
        header = read_header(path)
        f64 = pa.float64()
        table = read_csv_columns(path, {"timestamp [ns]": pa.int64(), "gaze x [px]": f64, "gaze y [px]": f64},
                                 optional={"worn": pa.string()})
        ns = np.asarray(table["timestamp [ns]"].to_numpy(zero_copy_only=False), dtype=np.int64)
        world = path.parent / "world_timestamps.csv"
        origin = int(ns[0])
        if world.is_file():
            wt = read_csv_columns(world, {"timestamp [ns]": pa.int64()})["timestamp [ns]"]
            origin = int(pc.min(wt).as_py())
            ctx.notes.append("time origin: first world timestamp")
        else:
            ctx.notes.append("no world_timestamps.csv: time origin is the first gaze sample")
        if ctx.video is not None:
            W, H = ctx.video.width, ctx.video.height
        else:
            W, H = PUPIL_CLOUD_DEFAULT_SIZE
            ctx.notes.append(f"no --video: gaze normalised by {W}x{H} (Neon scene camera)")
        valid = None
        if "worn" in table.column_names:
            w = pc.utf8_lower(pc.fill_null(table["worn"], "1"))
            valid = np.asarray(pc.is_in(w, pa.array(["1", "1.0", "true"])).to_numpy(zero_copy_only=False), bool)
        t = (ns - origin) / 1e9
        x, y = to_float(table["gaze x [px]"]) / W, to_float(table["gaze y [px]"]) / H
        del header
        camera = path.parent / "scene_camera.json"  # the export's intrinsics (camera_matrix, distortion)
        if camera.is_file():
            try:
                fx = float(read_json(camera)["camera_matrix"][0][0])
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InputError(camera, f"expected a camera_matrix (3x3 list) ({type(exc).__name__}: {exc})") from None
            ctx.units = lens_units(camera, fx, W, H, f"scene_camera.json: fx {fx:g} px on {W} px")
        return {"gaze": gaze_table(t, x, y, valid)}
