"""Built-in ingest formats (``streamgaze formats`` lists them).

- ``pupil-player``: a Pupil Player export folder, or its ``gaze_positions.csv`` (+ ``world_timestamps.csv``).
- ``ego4d-gaze``: Ego4D ``gaze/<video_uid>.csv`` (Pupil columns, ``canonical_timestamp_s``).
- ``generic-csv``: a time column (``t_s``/``t_ms``/``t_us``/``t_ns``), ``x,y`` normalised (or ``x_px,y_px``
  with ``--video``), optional ``valid``; origin top left.
- ``egtea-smi``: EGTEA Gaze+ SMI BeGaze text export (both variants), 1280x960 px, frame times at 24 fps.
- ``egoexolearn-npy``: EgoExoLearn ``gazes_30fps_npy/<video>.npy``, (N, 3) ``x, y, valid`` per 30 fps frame.
- ``holoassist``: HoloAssist ``Export_py`` folder: eye ray 0.5 m out, into the PV camera, pinhole-projected.
- ``aria-mps``: Aria MPS eye-gaze CSV (gen1 legacy/general, vergence, gen2), yaw/pitch through a declared camera.
- ``pupil-cloud``: Pupil Cloud (Neon/Invisible) ``gaze.csv`` in scene pixels, ns timestamps.
- ``tobii-tx300``: Tobii TX300 SDK TSV, both eyes averaged where valid (validity <= 1).
- ``eyelink-edf``: SR Research EDF through ``eyelinkio`` (optional extra ``edf``).
- ``actions-csv``: ``t_start,t_end,label`` in seconds; ``egtea-actions``: EGTEA action split files.
- ``egoexolearn-actions``: EgoExoLearn per-video annotation JSON (``start``, ``end``, ``textAttribute_en``).
- ``holoassist-actions``: HoloAssist annotation JSON, "Fine grained action" events as "verb noun".

Pupil's ``norm_pos`` has a **bottom-left origin** (y up), so y = 1 - norm_pos_y for both Pupil formats
(StreamGaze's own Ego4D parser did not flip; we do).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.plugins.api import (
    DEFAULT_DEG_PER_UNIT, gaze_table, GazeUnits, hookimpl, InputError, LoadContext, read_csv_columns,
    read_header, read_text_table, require_file, to_float, validate_actions,
)

#: Pupil samples below this confidence are marked invalid (Pupil Labs' own default threshold).
PUPIL_MIN_CONFIDENCE = 0.6


def lens_units(path: Path, f_px: float, width: float, height: float, source: str) -> GazeUnits:
    """The angular scale at the centre of a pinhole or equidistant camera: one pixel there spans 1 / f rad.
    ``path`` is the file the numbers come from, named in the error when one is not a positive number."""
    for name, value in (("focal length", f_px), ("width", width), ("height", height)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(path, f"camera {name} must be a positive number, got {value:g}")
    return GazeUnits(float(np.degrees(width / f_px)), float(height / width), source)


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
        ctx.units = GazeUnits(DEFAULT_DEG_PER_UNIT, 1080 / 1088, "Ego4D's Pupil Invisible scene camera, 1088x1080 px")
        return {"gaze": gaze_table(t, x, y, valid)}


#: Time columns a generic CSV may use, with their factor to seconds (the column name declares the unit).
GENERIC_TIME_UNITS = {"t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6, "t_ns": 1e-9}


class GenericCsvLoader:
    """CSV: t_s|t_ms|t_us|t_ns, x,y (normalised, top-left) or x_px,y_px (needs --video), optional valid."""

    name = "generic-csv"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
        header = read_header(path)
        tcol = next((c for c in GENERIC_TIME_UNITS if c in header), "t_s")
        px = "x" not in header and "x_px" in header
        xc, yc = ("x_px", "y_px") if px else ("x", "y")
        f64 = pa.float64()
        table = read_csv_columns(path, {tcol: f64, xc: f64, yc: f64}, optional={"valid": pa.bool_()})
        t = to_float(table[tcol]) * GENERIC_TIME_UNITS[tcol]
        x, y = to_float(table[xc]), to_float(table[yc])
        if px:
            if ctx.video is None:
                raise InputError(path, "pixel coordinates need --video (to know the frame size)", row=1, column=xc)
            x, y = x / ctx.video.width, y / ctx.video.height
        valid = None
        if "valid" in table.column_names:
            valid = np.asarray(pc.fill_null(table["valid"], False).to_numpy(zero_copy_only=False), dtype=bool)
        return {"gaze": gaze_table(t, x, y, valid)}


# ---------------------------------------------------------------------------------------------------------
# EGTEA Gaze+ (SMI BeGaze text export)

#: EGTEA gaze is in the SMI scene camera's 1280 x 960 pixels; its videos (and frame numbers) are 24 fps.
EGTEA_GAZE_SIZE = (1280.0, 960.0)
EGTEA_FPS = 24.0
#: Header lines before the first sample row (GLC / StreamGaze `parse_gtea_gaze`).
EGTEA_HEADER_LINES = 34
#: BeGaze event label -> the reference's type code (1 fixation, 2 saccade, 3 anything else).
EGTEA_EVENTS = {"Fixation": 1, "Saccade": 2}


def _egtea_version(path: Path) -> int:
    """v1 has ``## Number of Samples:`` on the 10th line (index 9), v2 on the 11th."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = [fh.readline() for _ in range(11)]
    if "## Number of Samples:" in head[9]:
        return 1
    if "## Number of Samples:" in head[10]:
        return 2
    raise InputError(path, "not an SMI BeGaze export: no '## Number of Samples:' on line 10 or 11", row=10)


def _egtea_delimiter(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            if i == EGTEA_HEADER_LINES:
                return "\t" if "\t" in line else " "
    raise InputError(path, "no data rows", row=EGTEA_HEADER_LINES + 1)


class EgteaSmiLoader:
    """EGTEA Gaze+ SMI BeGaze text (v1: 7 fields, frame no.; v2: 26 fields, hh:mm:ss:ff at 24 fps); 1280x960 px.

    Time: the sample's video frame / 24 fps; the k-th of m samples within one frame gets + k / (m * 24) so
    every sample keeps its own (increasing) time and the true per-frame mean stays available (the reference
    averaged them pairwise). Pixels outside 1280 x 960 keep their value (flagged out of frame).
    """

    name = "egtea-smi"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
        ver = _egtea_version(path)
        delim = _egtea_delimiter(path)
        f64, s = pa.float64(), pa.string()
        if ver == 1:
            names = [f"c{i}" for i in range(7)]
            types = {"c3": f64, "c4": f64, "c5": pa.int64(), "c6": s}
        else:
            names = [f"c{i}" for i in range(26)]
            types = {"c5": f64, "c6": f64, "c24": s, "c25": s}
        table = read_text_table(path, names, types, delimiter=delim, skip_rows=EGTEA_HEADER_LINES)
        line0 = EGTEA_HEADER_LINES + 1
        if ver == 1:
            x, y = to_float(table["c3"]), to_float(table["c4"])
            frame = to_float(table["c5"])
            event = table["c6"]
        else:
            x, y = to_float(table["c5"]), to_float(table["c6"])
            frame = _timecode_frames(path, table["c24"], EGTEA_FPS, line0, names[24])
            event = table["c25"]
        bad = np.flatnonzero(~np.isfinite(frame))
        if bad.size:
            raise InputError(path, "frame number is missing", row=int(bad[0]) + line0, column="frame")
        dec = np.flatnonzero(np.diff(frame) < 0)
        if dec.size:
            raise InputError(path, "frame number goes backwards", row=int(dec[0]) + 1 + line0, column="frame")
        t = _spread_within_frames(frame, EGTEA_FPS)
        W, H = EGTEA_GAZE_SIZE
        ev = pc.fill_null(event, "")
        tracked = ~np.asarray(pc.equal(ev, "-").to_numpy(zero_copy_only=False), bool)
        ctx.notes.append(f"SMI BeGaze v{ver}; gaze normalised by {W:.0f}x{H:.0f}; time = frame / {EGTEA_FPS:g} fps")
        # SMI writes POR (0, 0) and event "-" when it has no gaze
        valid = tracked & ~((x == 0) & (y == 0))
        return {"gaze": gaze_table(t, x / W, y / H, valid).append_column("event", ev)}


def _timecode_frames(path: Path, col, fps: float, line0: int, name: str) -> np.ndarray:
    """``hh:mm:ss:ff`` -> frame number (vectorised with pyarrow string kernels)."""
    parts = pc.split_pattern(pc.fill_null(col, ""), ":")
    ok = np.asarray(pc.equal(pc.list_value_length(parts), 4).to_numpy(zero_copy_only=False), bool)
    if not ok.all():
        raise InputError(path, "timecode is not hh:mm:ss:ff", row=int(np.flatnonzero(~ok)[0]) + line0, column=name)
    flat = pc.list_flatten(parts)
    try:
        nums = np.asarray(pc.cast(flat, pa.int64()).to_numpy(), dtype=np.float64).reshape(-1, 4)
    except pa.ArrowInvalid:
        raise InputError(path, "timecode is not hh:mm:ss:ff", column=name) from None
    return (nums[:, 0] * 3600 + nums[:, 1] * 60 + nums[:, 2]) * fps + nums[:, 3]


def _spread_within_frames(frame: np.ndarray, fps: float) -> np.ndarray:
    """Time of each sample: frame / fps, plus k / (m * fps) for the k-th of the m samples in its frame."""
    n = frame.size
    if n == 0:
        return frame.astype(np.float64)
    start = np.flatnonzero(np.concatenate(([True], frame[1:] != frame[:-1])))
    counts = np.diff(np.concatenate((start, [n])))
    k = np.arange(n) - np.repeat(start, counts)
    return (frame + k / np.repeat(counts, counts)) / fps


# ---------------------------------------------------------------------------------------------------------
# EgoExoLearn (processed per-frame npy)

EGOEXO_FPS = 30.0


class EgoExoLearnNpyLoader:
    """EgoExoLearn gazes_30fps_npy/<video>.npy: (N, 3) x, y (normalised, top-left), valid; one row per 30 fps frame."""

    name = "egoexolearn-npy"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
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


# ---------------------------------------------------------------------------------------------------------
# HoloAssist (HoloLens 2 eye rays, PV camera poses and intrinsics)

#: How far along the eye ray the gaze point is placed before projecting (the reference's ``eye_dist``).
HOLOASSIST_EYE_DIST_M = 0.5
#: HoloLens camera axes (x right, y up, z backwards) -> OpenCV (x right, y down, z forward); PyHoloAssist's.
HOLO_TO_OPENCV = np.linalg.inv(
    np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
)


def _holo_files(ctx: LoadContext) -> dict[str, Path]:
    root = ctx.paths[0]
    if root.is_file():  # Eyes_sync.txt given: Export_py is two levels up
        root = root.parent.parent
    if (root / "Export_py").is_dir():
        root = root / "Export_py"
    files = {
        "eyes": root / "Eyes" / "Eyes_sync.txt",
        "pose": root / "Video" / "Pose_sync.txt",
        "intr": root / "Video" / "Intrinsics.txt",
        "timing": root / "Video" / "VideoMp4Timing.txt",
    }
    for k in ("eyes", "pose", "intr"):
        require_file(files[k])
    if ctx.video is None:
        for cand in ("Video_pitchshift.mp4", "Video.mp4", "Video_compress.mp4"):
            if (root / cand).is_file() and (root / cand).stat().st_size > 0:
                ctx.video_path = root / cand
                break
    return files


def project_holoassist(origin, direction, poses, K, dist: float = HOLOASSIST_EYE_DIST_M):
    """World eye rays -> pixel (u, v) in the PV camera: point ``dist`` m out, world->camera, axis flip, pinhole.

    ``poses`` (N, 4, 4) are camera-to-world, one per sample. Points behind the camera give NaN.
    """
    d = direction / np.where((n := np.linalg.norm(direction, axis=1, keepdims=True)) > 0, n, 1.0)
    pw = np.concatenate((origin + d * dist, np.ones((len(origin), 1))), axis=1)
    cam_from_world = HOLO_TO_OPENCV @ np.linalg.inv(poses)
    pc_ = np.einsum("nij,nj->ni", cam_from_world, pw)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(pc_[:, 2] > 0, pc_[:, 2], np.nan)
        u = pc_[:, 0] / z * K[0, 0] + K[0, 2]
        v = pc_[:, 1] / z * K[1, 1] + K[1, 2]
    return u, v


class HoloAssistLoader:
    """HoloAssist Export_py folder: Eyes_sync rays 0.5 m out, into the PV camera (nearest Pose_sync), pinhole."""

    name = "holoassist"

    def default_video_id(self, paths: list[Path]) -> str:
        p = Path(paths[0]).absolute()
        if p.is_file():
            p = p.parent.parent
        return p.parent.name if p.name == "Export_py" else p.name

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        files = _holo_files(ctx)
        f64 = pa.float64()
        enames = ["t", "ticks", "ox", "oy", "oz", "dx", "dy", "dz", "valid"]
        eyes = read_text_table(files["eyes"], enames, {c: (pa.int64() if c == "ticks" else f64) for c in enames})
        pnames = ["t", "ticks"] + [f"m{i}" for i in range(16)]
        pose = read_text_table(files["pose"], pnames, {c: (pa.int64() if c == "ticks" else f64) for c in pnames[1:]})
        intr = np.array(files["intr"].read_text().split(), dtype=object)
        try:
            iv = intr.astype(np.float64)
        except ValueError:
            raise InputError(files["intr"], "expected numbers: fx 0 cx 0 fy cy 0 0 1 width height") from None
        if iv.size < 11:
            raise InputError(files["intr"], f"expected 11 numbers (fx 0 cx 0 fy cy 0 0 1 width height), got {iv.size}")
        K, width, height = iv[:9].reshape(3, 3), iv[-2], iv[-1]

        gt = np.asarray(eyes["ticks"].to_numpy(), np.int64)
        pt = np.asarray(pose["ticks"].to_numpy(), np.int64)
        order = np.argsort(pt, kind="stable")
        pt = pt[order]
        mats = np.column_stack([to_float(pose[f"m{i}"]) for i in range(16)])[order].reshape(-1, 4, 4)
        # nearest pose in time for every gaze sample (vectorised searchsorted)
        j = np.clip(np.searchsorted(pt, gt), 1, max(len(pt) - 1, 1))
        if len(pt) > 1:
            j = np.where(np.abs(pt[j - 1] - gt) <= np.abs(pt[j] - gt), j - 1, j)
        else:
            j = np.zeros_like(gt)
        origin = np.column_stack([to_float(eyes[c]) for c in ("ox", "oy", "oz")])
        direc = np.column_stack([to_float(eyes[c]) for c in ("dx", "dy", "dz")])
        u, v = project_holoassist(origin, direc, mats[j], K)
        valid = to_float(eyes["valid"]) == 1
        if files["timing"].is_file():
            start = int(files["timing"].read_text().split()[0])
            ctx.notes.append("time origin: VideoMp4Timing start tick")
        else:
            start = int(gt[0])
            ctx.notes.append("no VideoMp4Timing.txt: time origin is the first gaze tick")
        t = (gt - start) / 1e7
        ctx.notes.append(f"eye ray at {HOLOASSIST_EYE_DIST_M} m projected into {width:.0f}x{height:.0f} PV camera")
        ctx.units = lens_units(files["intr"], K[0, 0], width, height,
                               f"Intrinsics.txt: fx {K[0, 0]:g} px on {width:.0f} px")
        return {"gaze": gaze_table(t, u / width, v / height, valid)}


# ---------------------------------------------------------------------------------------------------------
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


class AriaMpsLoader:
    """Aria MPS eye gaze CSV (gen1 legacy/general, vergence, gen2); yaw/pitch through a declared RGB camera."""

    name = "aria-mps"

    def default_video_id(self, paths: list[Path]) -> str:
        p = Path(paths[0]).absolute()
        parts = [q.name for q in p.parents if q.name not in ("eye_gaze", "eye_gaze_vergence", "mps")]
        return parts[0] if parts else p.stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        import json

        csvs = [p for p in ctx.paths if p.suffix.lower() == ".csv"]
        cams = [p for p in ctx.paths if p.suffix.lower() == ".json"]
        if len(csvs) != 1:
            raise InputError(ctx.paths[0], "aria-mps takes one eye-gaze CSV (and optionally aria_camera.json)")
        path = require_file(csvs[0])
        cam_path = cams[0] if cams else (path.parent / "aria_camera.json")
        cam = dict(ARIA_CAMERA)
        if cam_path.is_file():
            try:
                cam.update(json.loads(cam_path.read_text()))
            except ValueError as exc:
                raise InputError(cam_path, f"not JSON: {exc}") from None
            for key in ("f_px", "cx", "cy", "width", "height"):
                if isinstance(cam[key], bool) or not isinstance(cam[key], (int, float)):
                    raise InputError(cam_path, f"{key} must be a number, got {cam[key]!r}")
            if cam.get("model", "equidistant") not in ("equidistant", "pinhole"):
                raise InputError(cam_path, f"model must be equidistant or pinhole, got {cam['model']!r}")
            ctx.notes.append(f"camera from {cam_path.name}")
        else:
            ctx.notes.append("declared camera (no device calibration): equidistant f=610 px on 1408x1408")
        header = read_header(path)
        f64 = pa.float64()
        if "yaw_rads_cpf" in header:
            kind = "gen2" if "left_pitch_rads_cpf" in header else ("legacy" if header[3] == "depth_m" else "general")
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


# ---------------------------------------------------------------------------------------------------------
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
                fx = float(json.loads(camera.read_text())["camera_matrix"][0][0])
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InputError(camera, f"expected a camera_matrix (3x3 list) ({type(exc).__name__}: {exc})") from None
            ctx.units = lens_units(camera, fx, W, H, f"scene_camera.json: fx {fx:g} px on {W} px")
        return {"gaze": gaze_table(t, x, y, valid)}


# ---------------------------------------------------------------------------------------------------------
# Tobii TX300 (Tobii SDK TSV, as I2MC imports it)

#: Tobii validity codes: 0 certain, 1 probably this eye, 2 unsure which eye, 3 probably missing, 4 missing.
TOBII_MAX_VALIDITY = 1


class TobiiTx300Loader:
    """Tobii TX300 TSV: Time (us), {L,R}GazePos2d (display-normalised, top-left); valid eyes averaged."""

    name = "tobii-tx300"

    def default_video_id(self, paths: list[Path]) -> str:
        return Path(paths[0]).stem

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        path = require_file(_one(ctx, self.name))
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


# ---------------------------------------------------------------------------------------------------------
# EyeLink EDF (optional extra ``edf``: eyelinkio)


def read_edf(path: Path):
    """``eyelinkio.read_edf`` with one-line errors (missing extra, unreadable file); its C library's chatter hidden."""
    import os
    import sys

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
        path = _one(ctx, self.name)
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

            tables.append(validate_actions(path, table.select(["t_start", "t_end", "label"])))
        table = pa.concat_tables(tables)
        table = table.sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        return {"actions": table}


class EgteaActionsLoader:
    """EGTEA action split files (<video>-<start ms>-<end ms>-F<f0>-F<f1> action verb noun); +action_idx.txt names."""

    name = "egtea-actions"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        names = next((p for p in ctx.paths if p.name == "action_idx.txt"), None)
        splits = [p for p in ctx.paths if p is not names]
        if not splits:
            raise InputError(ctx.paths[0], "no action split file given")
        label_of = {}
        if names is not None:
            for i, line in enumerate(require_file(names).read_text(encoding="utf-8").splitlines()):
                parts = line.rsplit(None, 1)
                if len(parts) == 2 and parts[1].isdigit():
                    label_of[int(parts[1])] = parts[0].strip()
                elif line.strip():
                    raise InputError(names, "expected '<action name> <index>'", row=i + 1)
        tables = []
        for path in splits:
            tab = read_text_table(path, ["clip", "action", "verb", "noun"], {"clip": pa.string(), "action": pa.int64()},
                                  delimiter=" ")
            m = pc.extract_regex(tab["clip"], r"^(?P<vid>.+)-(?P<s>\d+)-(?P<e>\d+)-F\d+-F\d+$")
            ok = np.asarray(pc.is_valid(m).to_numpy(zero_copy_only=False), bool)
            if not ok.all():
                raise InputError(path, "clip name is not <video>-<start ms>-<end ms>-F<n>-F<n>",
                                 row=int(np.flatnonzero(~ok)[0]) + 1, column="clip")
            vid = pc.struct_field(m, "vid")
            keep = pc.equal(vid, ctx.video_id)
            tab, m = tab.filter(keep), m.filter(keep)
            t0 = to_float(pc.cast(pc.struct_field(m, "s"), pa.int64())) / 1000
            t1 = to_float(pc.cast(pc.struct_field(m, "e"), pa.int64())) / 1000
            idx = tab["action"].to_numpy(zero_copy_only=False)
            labels = [label_of.get(int(a), f"action {int(a)}") for a in np.unique(idx)]
            lab = dict(zip(np.unique(idx).tolist(), labels))
            tables.append(pa.table({"t_start": t0, "t_end": t1,
                                    "label": pa.array([lab[a] for a in idx.tolist()], pa.string())}))
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        if table.num_rows == 0:
            raise InputError(splits[0], f"no clip of video {ctx.video_id!r} (pass --video-id)")
        return {"actions": table}


def _read_json(path: Path):
    require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", row=exc.lineno) from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None


def _json_actions(path: Path, t0: list, t1: list, labels: list, fields: tuple[str, str, str], rows: list[int],
                  what: str) -> pa.Table:
    """Action rows read from JSON records, checked by `validate_actions`; an error names the record (1-based
    ``row`` = its place in the file's list, ``what`` says which list) and the JSON field."""

    column = dict(zip(("t_start", "t_end", "label"), fields))
    for name, values in (("t_start", t0), ("t_end", t1)):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise InputError(path, f"{what}: time is missing or not a number", row=rows[i], column=column[name])
            try:
                values[i] = float(v)
            except ValueError:
                raise InputError(path, f"{what}: time is not a number", row=rows[i], column=column[name]) from None
    for i, v in enumerate(labels):
        if not isinstance(v, str):
            raise InputError(path, f"{what}: label is missing or not text", row=rows[i], column=column["label"])
    table = pa.table({"t_start": pa.array(t0, pa.float64()), "t_end": pa.array(t1, pa.float64()),
                      "label": pa.array(labels, pa.string())})
    try:
        return validate_actions(path, table)
    except InputError as exc:  # validate_actions counts CSV lines (header = row 1); here rows are records
        raise InputError(path, f"{what}: {exc.problem}", row=rows[(exc.row or 2) - 2],
                         column=column.get(exc.column or "", exc.column)) from None


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
            segments = _segment_list(path, _read_json(path), ctx.video_id)
            t0, t1, labels, rows = [], [], [], []
            for i, seg in enumerate(segments):
                if not isinstance(seg, dict):
                    raise InputError(path, "segment is not a JSON object", row=i + 1)
                t0.append(seg.get("start"))
                t1.append(seg.get("end"))
                label = seg.get("textAttribute_en")
                labels.append(label.strip() if isinstance(label, str) else label)
                rows.append(i + 1)
            tables.append(_json_actions(path, t0, t1, labels, ("start", "end", "textAttribute_en"), rows, "segment"))
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        if table.num_rows == 0:
            raise InputError(ctx.paths[0], "no segments")
        return {"actions": table}


#: HoloAssist's event label of the fine-grained actions, and the attribute names of their parts.
HOLOASSIST_FINE = "Fine grained action"
HOLOASSIST_VERB, HOLOASSIST_NOUN = "Verb", "Noun"


class HoloAssistActionsLoader:
    """HoloAssist annotation JSON (list of {video_name, events}): "Fine grained action" events as "verb noun"."""

    name = "holoassist-actions"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        tables, skipped, found = [], 0, False
        for path in ctx.paths:
            data = _read_json(path)
            videos = data if isinstance(data, list) else [data]
            for v, video in enumerate(videos):
                if not isinstance(video, dict) or not isinstance(video.get("events", []), list):
                    raise InputError(path, "expected a list of videos, each {video_name, events: [...]}", row=v + 1)
                if video.get("video_name") != ctx.video_id:
                    continue
                found = True
                t0, t1, labels, rows = [], [], [], []
                for i, ev in enumerate(video.get("events", [])):
                    if not isinstance(ev, dict) or ev.get("label") != HOLOASSIST_FINE:
                        continue
                    attrs = ev.get("attributes") if isinstance(ev.get("attributes"), dict) else {}
                    parts = [attrs.get(HOLOASSIST_VERB), attrs.get(HOLOASSIST_NOUN)]
                    parts = [p.strip() for p in parts if isinstance(p, str) and p.strip()]
                    if len(parts) < 2:
                        skipped += 1
                        continue
                    t0.append(ev.get("start"))
                    t1.append(ev.get("end"))
                    labels.append(" ".join(parts))
                    rows.append(i + 1)
                tables.append(_json_actions(path, t0, t1, labels, ("start", "end", "attributes"), rows,
                                            f"video {ctx.video_id!r} event"))
        if not found:
            raise InputError(ctx.paths[0], f"no video {ctx.video_id!r} (pass --video-id)")
        if skipped:
            ctx.notes.append(f"{skipped} fine-grained event(s) without a verb or a noun skipped")
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        return {"actions": table}


@hookimpl
def streamgaze_gaze_loaders():
    return {
        "pupil-player": PupilPlayerLoader(),
        "ego4d-gaze": Ego4DGazeLoader(),
        "ego4d": Ego4DGazeLoader(),
        "generic-csv": GenericCsvLoader(),
        "egtea-smi": EgteaSmiLoader(),
        "egoexolearn-npy": EgoExoLearnNpyLoader(),
        "holoassist": HoloAssistLoader(),
        "aria-mps": AriaMpsLoader(),
        "pupil-cloud": PupilCloudLoader(),
        "tobii-tx300": TobiiTx300Loader(),
        "eyelink-edf": EyeLinkEdfLoader(),
        "actions-csv": ActionsCsvLoader(),
        "egtea-actions": EgteaActionsLoader(),
        "egoexolearn-actions": EgoExoLearnActionsLoader(),
        "holoassist-actions": HoloAssistActionsLoader(),
    }
