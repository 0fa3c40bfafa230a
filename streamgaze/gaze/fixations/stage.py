"""The fixations stage: store in (``gaze``, ``videos``, ``gaze_units``), ``fixations`` and ``episodes`` out."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.errors import InputError
from streamgaze.gaze.fixations.detection import check_params, detect, get_detector
from streamgaze.gaze.fixations.device import (
    HEAD_MOUNTED,
    SCREEN,
    SCREEN_ASSUMED_WIDTH_DEG,
    check_device,
    class_defaults,
    describe,
    detector_label,
    device_class,
    gaze_rate_hz,
)
from streamgaze.gaze.fixations.episodes import EPISODE_DEFAULTS, build_episodes
from streamgaze.gaze.geometry import DEFAULT_DEG_PER_UNIT
from streamgaze.progress import stage
from streamgaze.store import check_store_path, open_store


def run_fixations(store_path: str | Path, detector: str = "ivt", params: dict | None = None,
                  device: str | None = None) -> str:
    """Per video in the store: read gaze (ORDER BY t_s), detect fixations, build episodes, write both tables.

    ``device`` (None or ``auto``: decided per video from the stored dataset, geometry and gaze rate;
    `streamgaze.gaze.fixations.device`) picks the detector's class defaults (``device_defaults``), laid under
    ``params``, which always win; the summary's second line says which class each video got.

    ``params`` mixes detector parameters and episode-builder parameters (`EPISODE_DEFAULTS`); an unknown
    name is an `InputError`. The angular scale is ``deg_per_unit`` when given, else the video's ``gaze_units``
    row (set at ingest by formats that know their camera or screen), else `DEFAULT_DEG_PER_UNIT`; the aspect
    likewise comes from the video's size, else ``gaze_units``. Also clears the ``objects`` rows of the processed
    videos (their episode ids no longer hold). All videos are written in one transaction.
    """
    params = dict(params or {})
    given_device = check_device(device)
    det = get_detector(detector)
    det_defaults = dict(getattr(det, "defaults", {}))
    allowed = {**det_defaults, **EPISODE_DEFAULTS, "deg_per_unit": None}
    params = check_params("--param", params, allowed)
    ep_params = {k: v for k, v in params.items() if k in EPISODE_DEFAULTS}
    det_params = {k: v for k, v in params.items() if k in det_defaults}
    store_path = Path(store_path)
    check_store_path(store_path)
    if not store_path.exists():
        raise InputError(store_path, "no such store file")

    results = {}
    with open_store(store_path) as store:
        vids = [r[0] for r in store.con.execute("SELECT DISTINCT video_id FROM gaze ORDER BY video_id").fetchall()]
        if not vids:
            raise InputError(store_path, "no gaze in the store; run `streamgaze ingest` first")
        meta = {r["video_id"]: r for r in store.rows("SELECT video_id, dataset, path, fps, width, height FROM videos")}
        units = {r["video_id"]: r for r in store.rows("SELECT video_id, deg_per_unit, aspect FROM gaze_units")}
        assumed = {}  # per device class: videos detected at an assumed angular scale
        choices, labels = {}, {}
        with stage("fixations", total=len(vids)) as advance:
            for vid in vids:
                g = store.query("SELECT t_s, x, y, valid FROM gaze WHERE video_id = ? ORDER BY t_s", [vid])
                m, u = meta.get(vid, {}), units.get(vid, {})
                W, H = m.get("width"), m.get("height")
                t = g["t_s"].to_numpy()
                choice = device_class(rate_hz=gaze_rate_hz(t), dataset=m.get("dataset"),
                                      deg_per_unit=u.get("deg_per_unit"), given=given_device)
                choices[vid] = choice
                kw = {**class_defaults(det, choice.device), **det_params}  # the user's values win
                labels[vid] = detector_label(detector, choice.device, kw)
                if "aspect" in det_defaults and "aspect" not in kw and (W and H or u.get("aspect")):
                    kw["aspect"] = H / W if W and H else u["aspect"]
                deg_per_unit = params.get("deg_per_unit") or u.get("deg_per_unit")
                if deg_per_unit is None and getattr(det, "uses_degrees", True):
                    assumed[choice.device] = assumed.get(choice.device, 0) + 1
                    if choice.device == SCREEN:
                        deg_per_unit = SCREEN_ASSUMED_WIDTH_DEG
                if "video_path" in det_defaults and not kw.get("video_path"):
                    if not m.get("path"):
                        raise InputError(store_path, f"detector {detector} needs the scene video of {vid!r}; "
                                         "ingest it with --video")
                    kw["video_path"] = m["path"]
                if "video_fps" in det_defaults and "video_fps" not in kw and m.get("fps"):
                    kw["video_fps"] = float(m["fps"])
                fx = detect(
                    t, _f(g["x"]), _f(g["y"]),
                    g["valid"].fill_null(False).to_numpy(zero_copy_only=False),
                    detector=detector, deg_per_unit=deg_per_unit, **kw,
                )
                eps = build_episodes(fx, width=W, height=H, video_path=m.get("path"), fps=m.get("fps"), **ep_params)
                results[vid] = (fx, eps)
                advance(1)
        with store.transaction():
            for vid, (fx, eps) in results.items():
                n = fx.num_rows
                fix_rows = pa.table(
                    {
                        "video_id": pa.array([vid] * n, pa.string()),
                        "fixation_id": pa.array(np.arange(1, n + 1), pa.int32()),
                        "t_start": fx["t_start"], "t_end": fx["t_end"], "x": fx["x"], "y": fx["y"],
                        "n_samples": pc.cast(fx["n_samples"], pa.int32()),
                        "detector": pa.array([labels[vid]] * n, pa.string()),
                    }
                )
                ep_rows = eps.add_column(0, "video_id", pa.array([vid] * eps.num_rows, pa.string()))
                store.replace_video_rows("fixations", [vid], fix_rows)
                store.replace_video_rows("episodes", [vid], ep_rows)
                store.con.execute("DELETE FROM objects WHERE video_id = ?", [vid])
    n_fix = sum(fx.num_rows for fx, _ in results.values())
    n_ep = sum(e.num_rows for _, e in results.values())
    line = f"fixations ({detector}): {n_fix} fixations, {n_ep} episodes over {len(results)} video(s)"
    if assumed.get(HEAD_MOUNTED):
        line += (f"; {assumed[HEAD_MOUNTED]} video(s) without a known camera scale: {DEFAULT_DEG_PER_UNIT:g} deg per "
                 "frame width assumed (--param deg_per_unit=N sets it)")
    if assumed.get(SCREEN):
        line += (f"; {assumed[SCREEN]} screen video(s) without a known screen scale: {SCREEN_ASSUMED_WIDTH_DEG:g} deg "
                 "per screen width assumed (--param deg_per_unit=N sets it)")
    return line + "\n" + describe(choices, detector, det, det_params)


def _f(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
