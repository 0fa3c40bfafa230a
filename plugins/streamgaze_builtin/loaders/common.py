"""Helpers the loaders share: one input file, JSON input, the angular scale of a camera lens."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from streamgaze.plugins.api import GazeUnits, InputError, LoadContext, require_file


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
    require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", row=exc.lineno) from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
