"""Device-aware fixation defaults: a head-mounted scene camera or a screen-based lab tracker (docs/gaze.md,
"Device classes").

The two differ in what a detector sees: a scene camera at 24-200 Hz moves with the head (image motion, VOR,
coarse speeds), a screen tracker at 250-2000 Hz sits still in front of a display (low noise, post-saccadic
oscillations, smooth pursuit of moving targets). A detector plugin may declare parameters per class in a
``device_defaults`` dict (``{"screen": {name: value}}``); `run_fixations` decides the class of each video from
what the store holds and lays the class's values under the user's ``--param`` values, which always win.
The head-mounted class has no entry in the built-in detectors, so its path is the detectors' own defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamgaze.errors import InputError

HEAD_MOUNTED = "head-mounted"
SCREEN = "screen"
DEVICE_CLASSES = (HEAD_MOUNTED, SCREEN)

#: Formats (the ``videos.dataset`` a plain ingest writes) and dataset names whose device class is known.
KNOWN_DATASETS = {
    "tobii-tx300": SCREEN, "eyelink-edf": SCREEN,
    "pupil-player": HEAD_MOUNTED, "pupil-cloud": HEAD_MOUNTED, "aria-mps": HEAD_MOUNTED, "ego4d": HEAD_MOUNTED,
    "ego4d-gaze": HEAD_MOUNTED, "egtea-smi": HEAD_MOUNTED, "egtea-gaze-plus": HEAD_MOUNTED,
    "egoexolearn-npy": HEAD_MOUNTED, "egoexolearn": HEAD_MOUNTED, "holoassist": HEAD_MOUNTED,
    "streamgaze-release": HEAD_MOUNTED, "streamgaze-metadata": HEAD_MOUNTED,
}

#: Head-mounted trackers record at most 200 Hz (Pupil Core, Neon, Invisible; the video-rate datasets 24-30 Hz);
#: screen trackers at 250-2000 Hz (EyeLink 250-2000, Tobii TX300 300, SMI Hi-Speed 500-1250).
SCREEN_MIN_RATE_HZ = 250.0

#: A stored geometry this wide (degrees per frame width) is a scene camera: a screen at a usual viewing distance
#: spans 25-60 deg (the shared EDF 51 deg), scene cameras 60-130 (Pupil Invisible 82, Aria 132).
SCENE_MIN_WIDTH_DEG = 90.0

#: The angular width assumed for a screen recording whose format stored no geometry (`tobii-tx300`, generic CSV):
#: a 50.9 cm wide display seen from 65 cm (a Tobii TX300's 23-inch screen at its usual distance), 42.8 deg.
#: Head-mounted recordings keep `streamgaze.gaze.geometry.DEFAULT_DEG_PER_UNIT` (82, Pupil Invisible's camera).
SCREEN_ASSUMED_WIDTH_DEG = 42.8

#: Samples read for the rate: the median step of the first ones (robust to gaps; costs nothing at 10 M samples).
RATE_SAMPLES = 100_001


@dataclass(frozen=True)
class DeviceChoice:
    """The class of one video and why: ``reason`` is said on stdout, e.g. ``500 Hz gaze``."""

    device: str
    reason: str


def gaze_rate_hz(t_s: np.ndarray) -> float | None:
    """Samples per second from the median positive step of the first `RATE_SAMPLES` times (None if unknown)."""
    d = np.diff(np.asarray(t_s[:RATE_SAMPLES], np.float64))
    d = d[np.isfinite(d) & (d > 0)]
    return float(1.0 / np.median(d)) if d.size else None


def check_device(device: str | None) -> str | None:
    """``None`` / ``auto`` (decide per video) or one of `DEVICE_CLASSES`; anything else is an `InputError`."""
    if device in (None, "auto"):
        return None
    if device not in DEVICE_CLASSES:
        raise InputError("--device", f"unknown device class {device!r}; choose auto, {', '.join(DEVICE_CLASSES)}")
    return device


def device_class(*, rate_hz: float | None, dataset: str | None = None, deg_per_unit: float | None = None,
                 given: str | None = None) -> DeviceChoice:
    """The device class of one video, first rule that applies:

    1. ``given`` (``--device``);
    2. a ``dataset`` (format) whose class is known (`KNOWN_DATASETS`);
    3. a stored geometry of at least `SCENE_MIN_WIDTH_DEG` per frame width: a scene camera;
    4. the gaze rate: at least `SCREEN_MIN_RATE_HZ` is a screen tracker, below it (or unknown) head-mounted,
       the class whose defaults the detectors had before there were classes.
    """
    if given is not None:
        return DeviceChoice(given, "given")
    if dataset in KNOWN_DATASETS:
        return DeviceChoice(KNOWN_DATASETS[dataset], f"dataset {dataset}")
    if deg_per_unit is not None and deg_per_unit >= SCENE_MIN_WIDTH_DEG:
        return DeviceChoice(HEAD_MOUNTED, f"{deg_per_unit:.0f} deg wide frame")
    if rate_hz is None:
        return DeviceChoice(HEAD_MOUNTED, "gaze rate unknown")
    return DeviceChoice(SCREEN if rate_hz >= SCREEN_MIN_RATE_HZ else HEAD_MOUNTED, f"{rate_hz:.0f} Hz gaze")


def class_defaults(detector, device: str) -> dict:
    """The detector's parameters for ``device`` that differ from its own defaults (empty: none declared)."""
    return dict((getattr(detector, "device_defaults", None) or {}).get(device, {}))


def describe(choices: dict[str, DeviceChoice], detector_name: str, detector, given: dict | None = None) -> str:
    """One line: each class with its videos and reasons, and the parameters it set, then the user's, e.g.
    ``device: screen for 1 video(s) (500 Hz gaze): ivt pso_ms=20; head-mounted for 2 video(s) (dataset
    pupil-player): ivt defaults; --param wins: threshold_deg_s=50``."""
    parts = []
    for device in DEVICE_CLASSES:
        vids = [c for c in choices.values() if c.device == device]
        if not vids:
            continue
        reasons = sorted({c.reason for c in vids})
        shown = ", ".join(reasons[:3]) + (f" and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        part = f"{device} for {len(vids)} video(s) ({shown})"
        params = class_defaults(detector, device)
        part += (f": {detector_name} {params_text(params)}" if params else f": {detector_name} defaults")
        parts.append(part)
    if given:
        parts.append(f"--param wins: {params_text(given)}")
    return "device: " + "; ".join(parts)


def params_text(params: dict) -> str:
    """``k=v`` pairs sorted by name (what the ``detector`` column and the summary show)."""
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def detector_label(detector_name: str, device: str, params: dict) -> str:
    """The ``fixations.detector`` value: the name with the class and the parameters it ran with beyond the
    detector's defaults (class values and the user's), e.g. ``ivt [screen pso_ms=20]``; the plain name for a
    head-mounted video at the detector's defaults (as before classes existed)."""
    if device == HEAD_MOUNTED and not params:
        return detector_name
    return f"{detector_name} [{device}" + (f" {params_text(params)}]" if params else "]")
