"""Project Aria: ``aria-mps``, the MPS eye-gaze CSV (gen1 legacy/general, vergence, gen2), yaw/pitch through a
declared camera.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.plugins.api import (
    InputError,
    LoadContext,
    gaze_table,
    read_csv_columns,
    read_header,
    read_json,
    require_file,
    shorten,
    to_float,
)
from streamgaze_builtin.loaders.common import lens_units

# Project Aria MPS eye gaze

#: The declared camera the CPF gaze direction is mapped through when no device calibration is given: an
#: equidistant fisheye (r = f * theta, the leading term of Aria's fisheye624) centred on a 1408 x 1408 RGB
#: frame with f = 610 px (Aria RGB full-resolution focal), CPF axes taken parallel to the camera's, +X of the
#: CPF (the wearer's left) to the image's left, +pitch up. Override with an ``aria_camera.json`` beside the
#: CSV (or as a second path): {"model": "equidistant"|"pinhole", "f_px", "cx", "cy", "width", "height",
#: "flip_x", "flip_y"}. The CPF-to-RGB extrinsics (a few cm, a few degrees) are ignored: see docs/gaze.md.
ARIA_CAMERA = {"model": "equidistant", "f_px": 610.0, "cx": 703.5, "cy": 703.5, "width": 1408, "height": 1408,
               "flip_x": True, "flip_y": True}


def aria_to_image(tan_yaw: np.ndarray, tan_pitch: np.ndarray, cam: dict) -> tuple[np.ndarray, np.ndarray]:
    """CPF direction (tan yaw, tan pitch, 1) -> normalised image x, y through the declared camera ``cam``."""
    sx = -1.0 if cam.get("flip_x", True) else 1.0
    sy = -1.0 if cam.get("flip_y", True) else 1.0
    f = float(cam["f_px"])
    if cam.get("model", "equidistant") == "pinhole":
        du, dv = f * tan_yaw, f * tan_pitch
    else:
        rho = np.hypot(tan_yaw, tan_pitch)  # direction (a, b, 1): theta = atan(rho)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(rho > 0, f * np.arctan(rho) / np.where(rho > 0, rho, 1.0), f)
        du, dv = scale * tan_yaw, scale * tan_pitch
    return (cam["cx"] + sx * du) / cam["width"], (cam["cy"] + sy * dv) / cam["height"]


_JSON_KIND = {list: "an array", int: "a number", float: "a number", str: "a string", bool: "true or false",
              type(None): "null"}


class AriaMpsLoader:
    """Aria MPS eye gaze CSV (gen1 legacy/general, vergence, gen2); yaw/pitch through a declared RGB camera."""

    name = "aria-mps"

    def default_video_id(self, paths: list[Path]) -> str:
        p = Path(paths[0]).absolute()
        parts = [q.name for q in p.parents if q.name not in ("eye_gaze", "eye_gaze_vergence", "mps")]
        return parts[0] if parts else p.stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        csvs = [p for p in ctx.paths if p.suffix.lower() == ".csv"]
        cams = [p for p in ctx.paths if p.suffix.lower() == ".json"]
        if len(csvs) != 1:
            raise InputError(ctx.paths[0], "aria-mps takes one eye-gaze CSV (and optionally aria_camera.json)")
        path = require_file(csvs[0])
        cam_path = cams[0] if cams else (path.parent / "aria_camera.json")
        cam = dict(ARIA_CAMERA)
        if cam_path.is_file():
            given = read_json(cam_path)
            if not isinstance(given, dict):
                raise InputError(cam_path, f"expected a JSON object {{model, f_px, cx, cy, width, height, flip_x, "
                                           f"flip_y}}, got {_JSON_KIND.get(type(given), 'something else')}")
            cam.update(given)
            for key in ("f_px", "cx", "cy", "width", "height"):
                if isinstance(cam[key], bool) or not isinstance(cam[key], (int, float)) or not math.isfinite(cam[key]):
                    raise InputError(cam_path, f"{key} must be a finite number, got {shorten(repr(cam[key]))}")
            if cam.get("model", "equidistant") not in ("equidistant", "pinhole"):
                raise InputError(cam_path, f"model must be equidistant or pinhole, got {shorten(repr(cam['model']))}")
            ctx.notes.append(f"camera from {cam_path.name}")
        else:
            ctx.notes.append("declared camera (no device calibration): equidistant f=610 px on 1408x1408")
        header = read_header(path)
        f64 = pa.float64()
        if "yaw_rads_cpf" in header:
            kind = "gen2" if "left_pitch_rads_cpf" in header else ("legacy" if header[3:4] == ["depth_m"] else "general")
            table = read_csv_columns(path, {"tracking_timestamp_us": pa.int64(), "yaw_rads_cpf": f64, "pitch_rads_cpf": f64})
            ty, tp = np.tan(to_float(table["yaw_rads_cpf"])), np.tan(to_float(table["pitch_rads_cpf"]))
        elif "left_yaw_rads_cpf" in header:
            kind = "vergence"
            table = read_csv_columns(path, {"tracking_timestamp_us": pa.int64(), "left_yaw_rads_cpf": f64,
                                            "right_yaw_rads_cpf": f64, "pitch_rads_cpf": f64})
            # two rays from the eyes (+-b on X) meeting at (X, Z): tan(left) = (X - b)/Z, tan(right) = (X + b)/Z,
            # so the cyclopean direction from the CPF origin has tan(yaw) = X/Z = their mean
            ty = 0.5 * (np.tan(to_float(table["left_yaw_rads_cpf"])) + np.tan(to_float(table["right_yaw_rads_cpf"])))
            tp = np.tan(to_float(table["pitch_rads_cpf"]))
        else:
            raise InputError(path, "not an Aria MPS eye-gaze CSV (no yaw_rads_cpf or left_yaw_rads_cpf)", row=1)
        us = np.asarray(table["tracking_timestamp_us"].to_numpy(zero_copy_only=False), dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(us))
        if bad.size:
            raise InputError(path, "time is missing", row=int(bad[0]) + 2, column="tracking_timestamp_us")
        t = (us - us[0]) / 1e6
        x, y = aria_to_image(ty, tp, cam)
        ctx.notes.append(f"MPS {kind} schema; time origin: first sample ({int(us[0])} us device time)")
        ctx.units = lens_units(cam_path, float(cam["f_px"]), float(cam["width"]), float(cam["height"]),
                               f"{cam_path.name if cam_path.is_file() else 'declared camera'}: "
                               f"f {float(cam['f_px']):g} px on {float(cam['width']):g} px")
        return {"gaze": gaze_table(t, x, y)}
