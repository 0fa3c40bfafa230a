"""Fixation detection and the dwell-episode builder.

Two levels (docs/gaze.md, "Head-mounted gaze"):

1. **Oculomotor fixations** from a detector plugin (`detect`; built-in ``ivt``), the eye still for >= 60 ms.
   Detectors work in *gaze-in-scene-image* coordinates (``ivt_flow`` subtracts the scene's own motion).
2. **Dwell episodes** (`build_episodes`): consecutive fixations merged when their centres are < ``merge_px``
   pixels apart (pixel-equivalents of a 640 px-wide frame, the reference's, so one value fits every camera) and
   the gap between them is < ``merge_gap_s``; episodes lasting at least ``min_episode_s`` are kept (2 s and 2.5 s
   as in the reference; 90 px where the reference merges its 2-s dwells at 50 px: docs/gaze.md, "Dwell
   episodes"). An optional scene-consistency filter (the reference's step 1.5) drops episodes whose sampled
   frames' HSV histograms disagree.

A detector plugin (hook ``streamgaze_fixation_detectors`` -> ``{name: Detector}``) is any object with a
``defaults`` dict (every parameter it accepts, with its default), optionally ``uses_degrees = False`` (its
parameters are in normalised units, so `run_fixations` does not warn about an assumed angular scale), and
``__call__(t_s, x, y, valid, *, deg_per_unit, **params) -> (start_idx, end_idx)``: integer arrays of events,
end exclusive, in time order, non-overlapping. `detect` computes times, centroids and sample counts. An optional
``device_defaults`` dict (``{"screen": {...}}``) gives parameters per device class, which `run_fixations` decides
per video (`device`: head-mounted scene camera or screen tracker) and lays under the user's ``--param`` values.

The package's modules: `detection` (`detect`, the `Detector` protocol and the helpers detector plugins share),
`ivt` (the I-VT speed test: compiled loop, numpy pass, threads), `device` (device classes and their defaults),
`episodes` (`build_episodes`), `scene`
(`scene_consistent`, `scene_flow`; OpenCV) and `stage` (`run_fixations`, the store-to-store stage). Settings
read at call time (`CHUNK`, `THREADS`, `COMPILED_THREADS`, `PARALLEL_MIN`) live in their modules
(`ivt.numpy_pass`, `ivt.parallel`, `detection`) and are not re-exported here: set them there.
"""
from __future__ import annotations

from streamgaze.gaze.fixations.detection import (
    Detector,
    check_params,
    check_times,
    detect,
    events_columns,
    events_table,
    first_decrease,
    get_detector,
    ok_from_bad,
    runs,
)
from streamgaze.gaze.fixations.episodes import EPISODE_DEFAULTS, MERGE_FRAME_WIDTH, build_episodes
from streamgaze.gaze.fixations.ivt.compiled import compiled_ivt
from streamgaze.gaze.fixations.ivt.numpy_pass import ivt_pass, slow_mask, span_slow_mask, speed
from streamgaze.gaze.fixations.ivt.parallel import compiled_threads, parallel_ranges
from streamgaze.gaze.fixations.scene import scene_consistent, scene_flow
from streamgaze.gaze.fixations.stage import run_fixations

__all__ = [
    "build_episodes", "check_params", "check_times", "compiled_ivt", "compiled_threads", "detect", "Detector",
    "EPISODE_DEFAULTS", "events_columns", "events_table", "first_decrease", "get_detector", "ivt_pass",
    "MERGE_FRAME_WIDTH", "ok_from_bad", "parallel_ranges", "run_fixations", "runs", "scene_consistent",
    "scene_flow", "slow_mask", "span_slow_mask", "speed",
]
