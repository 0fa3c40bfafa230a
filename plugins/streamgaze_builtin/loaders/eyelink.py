"""``eyelink-edf``: SR Research EDF through ``eyelinkio`` (optional extra ``edf``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.plugins.api import GazeUnits, InputError, LoadContext, gaze_table, require_file
from streamgaze_builtin.loaders.common import one_file

# EyeLink EDF (optional extra ``edf``: eyelinkio)


def read_edf(path: Path):
    """``eyelinkio.read_edf`` with one-line errors (missing extra, unreadable file); its C library's chatter hidden."""
    try:
        import eyelinkio
    except ImportError:
        raise InputError(path, "reading EDF needs the optional extra: pip install 'streamgaze[edf]'") from None
    require_file(path)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                return eyelinkio.read_edf(str(path))
            except Exception as exc:  # the C reader raises plain errors on bad files
                raise InputError(path, f"not a readable EDF file ({type(exc).__name__}: {exc})") from None
            finally:
                sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class EyeLinkEdfLoader:
    """EyeLink EDF (optional extra `edf`): xpos/ypos normalised by the EDF's screen size; NaN gaps invalid."""

    name = "eyelink-edf"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = one_file(ctx, self.name)
        edf = read_edf(path)
        fields = list(edf["info"]["sample_fields"])
        if "xpos" not in fields or "ypos" not in fields:
            raise InputError(path, f"EDF has no gaze samples (fields: {', '.join(fields)})")
        s = edf["samples"]
        W, H = (float(v) for v in edf["info"]["screen_coords"])
        x = np.asarray(s[fields.index("xpos")], np.float64) / W
        y = np.asarray(s[fields.index("ypos")], np.float64) / H
        t = np.asarray(edf["times"], np.float64)
        ctx.notes.append(f"screen gaze normalised by {W:.0f}x{H:.0f}; {edf['info']['sfreq']:g} Hz")
        ppd = edf_px_per_deg(edf)
        if ppd:
            ctx.units = GazeUnits(W / ppd, H / W, f"the EDF's validation: {ppd:.2f} px per degree")
        return {"gaze": gaze_table(t, x, y)}


def edf_px_per_deg(edf: dict) -> float | None:
    """Screen pixels per degree from the EDF's last validation, which lists each point's error both in degrees
    and in pixels: sum of the pixel offsets / sum of the degree offsets (None without a validation)."""
    for cal in reversed(edf["info"].get("calibrations") or []):
        v = cal.get("validation")
        if v is None or not len(v):
            continue
        px = np.hypot(v["diff_x"], v["diff_y"])
        deg = np.asarray(v["offset"], np.float64)
        if deg.sum() > 0:
            return float(px.sum() / deg.sum())
    return None
