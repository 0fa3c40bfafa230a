"""Helpers the loaders share: one input file, JSON input, the angular scale of a camera lens."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamgaze.plugins.api import GazeUnits, InputError, LoadContext
from streamgaze.plugins.api import read_json as api_read_json


def lens_units(path: Path, f_px: float, width: float, height: float, source: str) -> GazeUnits:
    """The angular scale at the centre of a pinhole or equidistant camera: one pixel there spans 1 / f rad.
    ``path`` is the file the numbers come from, named in the error when one is not a positive number."""
    for name, value in (("focal length", f_px), ("width", width), ("height", height)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(path, f"camera {name} must be a positive number, got {value:g}")
    return GazeUnits(float(np.degrees(width / f_px)), float(height / width), source)


def one_file(ctx: LoadContext, fmt: str) -> Path:
    files = [p for p in ctx.paths]
    if len(files) != 1:
        raise InputError(files[1] if len(files) > 1 else "PATH", f"{fmt} takes exactly one file")
    return files[0]


def read_json(path: Path):
    """A JSON file: UTF-8 (BOM allowed), not nested too deeply; else one `InputError` (the host's `read_json`)."""
    return api_read_json(path)
