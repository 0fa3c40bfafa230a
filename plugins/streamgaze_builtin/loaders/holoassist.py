"""HoloAssist: ``holoassist`` (an ``Export_py`` folder: eye ray 0.5 m out, into the PV camera, pinhole-projected)
and ``holoassist-actions`` (annotation JSON, "Fine grained action" events as "verb noun").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.plugins.api import (
    InputError,
    LoadContext,
    gaze_table,
    read_text,
    read_text_table,
    require_file,
    shorten,
    to_float,
)
from streamgaze_builtin.loaders.actions import json_actions
from streamgaze_builtin.loaders.common import lens_units, read_json

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
        intr = np.array(read_text(files["intr"]).split(), dtype=object)
        try:
            iv = intr.astype(np.float64)
        except ValueError:
            raise InputError(files["intr"], "expected numbers: fx 0 cx 0 fy cy 0 0 1 width height") from None
        if not np.isfinite(iv).all():
            raise InputError(files["intr"], "expected finite numbers: fx 0 cx 0 fy cy 0 0 1 width height")
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
            first = read_text(files["timing"]).split()[0]
            if not first.lstrip("-").isdigit():
                raise InputError(files["timing"], f"expected the video's start tick (an integer) first, got "
                                                  f"{shorten(repr(first))}", row=1)
            start = int(first)
            ctx.notes.append("time origin: VideoMp4Timing start tick")
        else:
            start = int(gt[0])
            ctx.notes.append("no VideoMp4Timing.txt: time origin is the first gaze tick")
        t = (gt - start) / 1e7
        ctx.notes.append(f"eye ray at {HOLOASSIST_EYE_DIST_M} m projected into {width:.0f}x{height:.0f} PV camera")
        ctx.units = lens_units(files["intr"], K[0, 0], width, height,
                               f"Intrinsics.txt: fx {K[0, 0]:g} px on {width:.0f} px")
        return {"gaze": gaze_table(t, u / width, v / height, valid)}


#: HoloAssist's event label of the fine-grained actions, and the attribute names of their parts.
HOLOASSIST_FINE = "Fine grained action"
HOLOASSIST_VERB, HOLOASSIST_NOUN = "Verb", "Noun"


class HoloAssistActionsLoader:
    """HoloAssist annotation JSON (list of {video_name, events}): "Fine grained action" events as "verb noun"."""

    name = "holoassist-actions"

    def __call__(self, ctx: LoadContext) -> dict[str, pa.Table]:
        tables, skipped, found = [], 0, False
        for path in ctx.paths:
            data = read_json(path)
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
                tables.append(json_actions(path, t0, t1, labels, ("start", "end", "attributes"), rows,
                                            f"video {ctx.video_id!r} event"))
        if not found:
            raise InputError(ctx.paths[0], f"no video {ctx.video_id!r} (pass --video-id)")
        if skipped:
            ctx.notes.append(f"{skipped} fine-grained event(s) without a verb or a noun skipped")
        table = pa.concat_tables(tables).sort_by([("t_start", "ascending"), ("t_end", "ascending")])
        return {"actions": table}
