"""Dwell episodes: consecutive fixations merged (`build_episodes`), with the reference's optional
scene-consistency filter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from streamgaze.errors import StreamGazeError
from streamgaze.gaze.fixations.scene import scene_consistent

#: Width of the frame `build_episodes` measures ``merge_px`` in (the reference's videos are 640 px wide).
MERGE_FRAME_WIDTH = 640.0

#: Episode-builder parameters and defaults (docs/gaze.md, "Dwell episodes", gives the reasons).
EPISODE_DEFAULTS = {
    # neighbouring fixations closer than this (px of a 640 px-wide frame) belong to one dwell; the reference
    # merges its >= 2 s anchor dwells at 50, oculomotor fixations need room for refixations within an object
    "merge_px": 90.0,
    "merge_gap_s": 2.0,  # ... when the gap between them is shorter than this
    "min_episode_s": 2.5,  # dwell episodes shorter than this are dropped
    "scene_check": False,  # the reference's HSV-histogram scene-consistency filter (reads frames; see docs)
    "scene_min_corr": 0.9,  # each sampled frame's HSV histogram must correlate >= this with the first
    "scene_frames": 8,  # frames sampled per episode for the scene check
    "black_mean": 10.0,  # frames with mean intensity below this are "black" and ignored by the check
}


def build_episodes(
    fixations: pa.Table,
    *,
    width: int | None = None,
    height: int | None = None,
    merge_px: float = EPISODE_DEFAULTS["merge_px"],
    merge_gap_s: float = EPISODE_DEFAULTS["merge_gap_s"],
    min_episode_s: float = EPISODE_DEFAULTS["min_episode_s"],
    scene_check: bool = EPISODE_DEFAULTS["scene_check"],
    scene_min_corr: float = EPISODE_DEFAULTS["scene_min_corr"],
    scene_frames: int = EPISODE_DEFAULTS["scene_frames"],
    black_mean: float = EPISODE_DEFAULTS["black_mean"],
    video_path: str | Path | None = None,
    fps: float | None = None,
) -> pa.Table:
    """Merge consecutive fixations into dwell episodes; returns ``episode_id, t_start, t_end, x, y, n_fixations``.

    Two neighbouring fixations (in time order) join when the distance between their centres is < ``merge_px``
    and the gap (next t_start - previous t_end) is < ``merge_gap_s``. The distance is in pixel-equivalents: the
    ``width`` x ``height`` frame scaled to `MERGE_FRAME_WIDTH` px wide, so a setting means the same share of the
    image on a 640 px EGTEA video and a 1408 px Aria one. Without a frame size the frame is taken as square.
    An episode's centre is the sample-weighted mean of its fixations' centres. Episodes lasting
    >= ``min_episode_s`` are kept, numbered ``e1, e2, ...`` in time order; they never overlap.
    ``scene_check`` (needs ``video_path`` and ``fps``) applies `scene_consistent` to every kept episode.
    """
    f = fixations.sort_by("t_start") if fixations.num_rows else fixations
    t0 = np.asarray(f["t_start"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    t1 = np.asarray(f["t_end"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    x = np.asarray(f["x"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    y = np.asarray(f["y"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    w = np.asarray(f["n_samples"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    W = MERGE_FRAME_WIDTH
    H = W * height / width if (width and height) else W
    if t0.size:
        link = (np.hypot(np.diff(x) * W, np.diff(y) * H) < merge_px) & ((t0[1:] - t1[:-1]) < merge_gap_s)
        group = np.concatenate(([0], np.cumsum(~link)))
        starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        ends = np.concatenate((starts[1:], [t0.size]))
        ws = np.add.reduceat(w, starts)
        ex = np.add.reduceat(w * x, starts) / np.where(ws > 0, ws, 1)
        ey = np.add.reduceat(w * y, starts) / np.where(ws > 0, ws, 1)
        et0 = t0[starts]
        et1 = np.maximum.reduceat(t1, starts)
        nf = ends - starts
        keep = (et1 - et0) >= min_episode_s - 1e-9
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    else:
        et0 = et1 = ex = ey = np.zeros(0)
        nf = np.zeros(0, np.int64)
    if scene_check and et0.size:
        if video_path is None or not fps:
            raise StreamGazeError("scene_check needs the video (path and fps) in the videos table")
        keep = np.array(
            [scene_consistent(video_path, fps, a, b, n_frames=int(scene_frames), min_corr=scene_min_corr,
                              black_mean=black_mean) for a, b in zip(et0, et1)],
            dtype=bool,
        )
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    return pa.table(
        {
            "episode_id": pa.array([f"e{i + 1}" for i in range(et0.size)], pa.string()),
            "t_start": pa.array(et0, pa.float64()),
            "t_end": pa.array(et1, pa.float64()),
            "x": pa.array(ex, pa.float64()),
            "y": pa.array(ey, pa.float64()),
            "n_fixations": pa.array(np.asarray(nf, np.int64), pa.int64()),
        }
    )
