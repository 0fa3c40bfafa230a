"""``tobii-tx300``: Tobii TX300 SDK TSV, both eyes averaged where valid (validity <= 1).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.plugins.api import InputError, LoadContext, gaze_table, read_csv_columns, require_file, to_float
from streamgaze_builtin.loaders.common import one_file

# Tobii TX300 (Tobii SDK TSV, as I2MC imports it)

#: Tobii validity codes: 0 certain, 1 probably this eye, 2 unsure which eye, 3 probably missing, 4 missing.
TOBII_MAX_VALIDITY = 1


class TobiiTx300Loader:
    """Tobii TX300 TSV: Time (us), {L,R}GazePos2d (display-normalised, top-left); valid eyes averaged."""

    name = "tobii-tx300"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(one_file(ctx, self.name))
        f64 = pa.float64()
        cols = {"Time": f64, "LGazePos2dx": f64, "LGazePos2dy": f64, "LValidity": f64,
                "RGazePos2dx": f64, "RGazePos2dy": f64, "RValidity": f64}
        table = read_csv_columns(path, cols, delimiter="	")
        us = to_float(table["Time"])
        bad = np.flatnonzero(~np.isfinite(us))
        if bad.size:
            raise InputError(path, "time is missing", row=int(bad[0]) + 2, column="Time")
        eyes = []
        for e in "LR":
            x, y = to_float(table[f"{e}GazePos2dx"]), to_float(table[f"{e}GazePos2dy"])
            v = to_float(table[f"{e}Validity"])
            ok = (v <= TOBII_MAX_VALIDITY) & np.isfinite(x) & np.isfinite(y) & ~((x == -1) & (y == -1))
            eyes.append((np.where(ok, x, 0.0), np.where(ok, y, 0.0), ok))
        n = eyes[0][2].astype(np.float64) + eyes[1][2]
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(n > 0, (eyes[0][0] + eyes[1][0]) / n, np.nan)
            y = np.where(n > 0, (eyes[0][1] + eyes[1][1]) / n, np.nan)
        t = (us - us[0]) / 1e6
        ctx.notes.append("screen gaze (display-normalised); time origin: first sample")
        return {"gaze": gaze_table(t, x, y, n > 0)}
