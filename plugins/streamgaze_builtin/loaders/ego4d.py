"""Ego4D: ``ego4d-gaze`` (alias ``ego4d``), ``gaze/<video_uid>.csv`` in Pupil columns; y flipped as for Pupil
(StreamGaze's own Ego4D parser did not flip; we do).
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from streamgaze.plugins.api import DEFAULT_DEG_PER_UNIT, GazeUnits, LoadContext, gaze_table, read_header, require_file
from streamgaze_builtin.loaders.common import one_file
from streamgaze_builtin.loaders.pupil import pupil_gaze


class Ego4DGazeLoader:
    """Ego4D gaze/<video_uid>.csv: canonical_timestamp_s, norm_pos flipped to top-left (y = 1 - norm_pos_y)."""

    name = "ego4d-gaze"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(one_file(ctx, self.name))
        header = read_header(path)
        time_col = "canonical_timestamp_s" if "canonical_timestamp_s" in header else "component_timestamp_s"
        t, x, y, valid = pupil_gaze(path, time_col)
        ctx.units = GazeUnits(DEFAULT_DEG_PER_UNIT, 1080 / 1088, "Ego4D's Pupil Invisible scene camera, 1088x1080 px")
        return {"gaze": gaze_table(t, x, y, valid)}
