"""EgoExoLearn: ``egoexolearn-npy`` (``gazes_30fps_npy/<video>.npy``, (N, 3) ``x, y, valid`` per 30 fps frame)
and ``egoexolearn-actions`` (per-video annotation JSON: ``start``, ``end``, ``textAttribute_en``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.plugins.api import InputError, LoadContext, gaze_table, require_file
from streamgaze_builtin.loaders.actions import json_actions
from streamgaze_builtin.loaders.common import one_file, read_json

# EgoExoLearn (processed per-frame npy)

EGOEXO_FPS = 30.0


class EgoExoLearnNpyLoader:
    """EgoExoLearn gazes_30fps_npy/<video>.npy: (N, 3) x, y (normalised, top-left), valid; one row per 30 fps frame."""

    name = "egoexolearn-npy"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(one_file(ctx, self.name))
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(path, f"not a numpy .npy array ({str(exc).splitlines()[0]})") from None
        if arr.ndim != 2 or arr.shape[1] < 3 or arr.dtype.kind not in "fiub":
            raise InputError(path, f"expected a numeric (N, 3) array of x, y, valid; got {arr.dtype} {arr.shape}")
        if arr.shape[0] == 0:
            raise InputError(path, "no data rows")
        x = np.asarray(arr[:, 0], np.float64)
        y = np.asarray(arr[:, 1], np.float64)
        valid = np.asarray(arr[:, 2], np.float64) > 0.5
        t = np.arange(arr.shape[0]) / EGOEXO_FPS
        return {"gaze": gaze_table(t, x, y, valid)}


def _segment_list(path: Path, data, video_id: str | None):
    """The segment records of an EgoExoLearn file: the file's list itself, or the one list-valued entry of an
    object (``{"annotations": [...]}``, or the video's own entry of ``{video_id: [...]}``)."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if video_id in data and isinstance(data[video_id], list):
            return data[video_id]
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    raise InputError(path, "expected a JSON list of segments (start, end, textAttribute_en), or an object holding one")


class EgoExoLearnActionsLoader:
    """EgoExoLearn per-video fine-grained annotation JSON: segments with start, end (s) and textAttribute_en."""

    name = "egoexolearn-actions"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        tables = []
        for path in ctx.paths:
            segments = _segment_list(path, read_json(path), ctx.video_id)
            t0, t1, labels, rows = [], [], [], []
            for i, seg in enumerate(segments):
                if not isinstance(seg, dict):
                    raise InputError(path, "segment is not a JSON object", row=i + 1)
                t0.append(seg.get("start"))
                t1.append(seg.get("end"))
                label = seg.get("textAttribute_en")
                labels.append(label.strip() if isinstance(label, str) else label)
                rows.append(i + 1)
            tables.append(json_actions(path, t0, t1, labels, ("start", "end", "textAttribute_en"), rows, "segment"))
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        if table.num_rows == 0:
            raise InputError(ctx.paths[0], "no segments")
        return {"actions": table}
