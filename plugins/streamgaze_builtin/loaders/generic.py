"""``generic-csv``: a time column (``t_s``/``t_ms``/``t_us``/``t_ns``), ``x,y`` normalised (or ``x_px,y_px``
with ``--video``), optional ``valid``; origin top left.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.plugins.api import (
    InputError,
    LoadContext,
    gaze_table,
    read_csv_columns,
    read_header,
    require_file,
    to_float,
)
from streamgaze_builtin.loaders.common import one_file

#: Time columns a generic CSV may use, with their factor to seconds (the column name declares the unit).
GENERIC_TIME_UNITS = {"t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6, "t_ns": 1e-9}


class GenericCsvLoader:
    """CSV: t_s|t_ms|t_us|t_ns, x,y (normalised, top-left) or x_px,y_px (needs --video), optional valid, video_id."""

    name = "generic-csv"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(one_file(ctx, self.name))
        header = read_header(path)
        tcol = next((c for c in GENERIC_TIME_UNITS if c in header), "t_s")
        px = "x" not in header and "x_px" in header
        xc, yc = ("x_px", "y_px") if px else ("x", "y")
        f64 = pa.float64()
        table = read_csv_columns(path, {tcol: f64, xc: f64, yc: f64},
                                 optional={"valid": pa.bool_(), "video_id": pa.string()})
        t = to_float(table[tcol]) * GENERIC_TIME_UNITS[tcol]
        x, y = to_float(table[xc]), to_float(table[yc])
        if px:
            if ctx.video is None:
                raise InputError(path, "pixel coordinates need --video (to know the frame size)", row=1, column=xc)
            x, y = x / ctx.video.width, y / ctx.video.height
        valid = None
        if "valid" in table.column_names:
            valid = np.asarray(pc.fill_null(table["valid"], False).to_numpy(zero_copy_only=False), dtype=bool)
        gaze = gaze_table(t, x, y, valid)
        if "video_id" in table.column_names:  # one file, many videos: ingest splits the rows by video
            gaze = gaze.append_column("video_id", table["video_id"])
        return {"gaze": gaze}
