"""The overlay clip a reviewer watches: the scene video from ``start`` to ``end`` with the gaze drawn by
`streamgaze.gaze.overlay.draw_gaze` (the same marks as ``render overlay`` and ``eval --gaze-prompt overlay``),
encoded as VP8 in WebM, which browsers play (Chromium does not play OpenCV's ``mp4v``, MPEG-4 Part 2, and
this OpenCV build has no H.264 encoder). Rendered on demand, cached on disk by source file, times and size.

VP8 in OpenCV's FFmpeg encodes about 90 frames/s at 320x240 on an idle core here (25 at 480x360 under
load), so clips are rendered small (width at most ``MAX_WIDTH``) at most ``MAX_FPS``, and long clips at a
lower frame rate (at most ``MAX_FRAMES`` frames, never below ``MIN_FPS``); the server renders the next
question's clip in the background while the reviewer works on the current one.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError
from streamgaze.gaze.geometry import OVERLAY_FOV_RADIUS
from streamgaze.gaze.overlay import GazeTrack, overlay_frames, resolve_video_path
from streamgaze.paths import inside, safe_name

MAX_WIDTH = 320
MAX_FPS = 10.0
MIN_FPS = 3.0
MAX_FRAMES = 600
FOURCC = "VP80"
SUFFIX = ".webm"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def video_row(store, video_id: str) -> dict:
    rows = store.rows("SELECT video_id, path, fps, width, height, duration_s FROM videos WHERE video_id = ?", [video_id])
    if not rows:
        raise InputError(store.path, f"no video {video_id!r} in the store")
    return rows[0]


def clip_source(store, video_id: str) -> tuple[Path, float, GazeTrack]:
    """The video file, frame rate and gaze track of ``video_id`` (``store`` open); a clear error if the
    video is not in the store or its file is gone."""
    v = video_row(store, video_id)
    src = resolve_video_path(store.path, v["path"])
    if not src.is_file():
        raise InputError(src, f"the video file of {video_id!r} is gone (moved or deleted)")
    return src, float(v["fps"] or 0), GazeTrack.from_store(store, video_id)


def cached_clip(src: Path, fps: float, track: GazeTrack, start: float, end: float, cache_dir) -> Path:
    """Render (or reuse) the overlay clip of ``src`` over [start, end] s; returns the .webm path."""
    stat = src.stat()
    key = f"{src.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{start:.3f}|{end:.3f}|{MAX_WIDTH}|{MAX_FPS}|{len(track.t)}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    out = inside(cache_dir, f"{safe_name(src.stem)}_{start:.3f}_{end:.3f}_{digest}{SUFFIX}")
    with _lock_for(str(out)):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            render_clip(src, fps, track, start, end, out)
    return out


def render_clip(src: Path, fps: float, track: GazeTrack, start: float, end: float, out: Path,
                fov_radius: float = OVERLAY_FOV_RADIUS) -> Path:
    import cv2

    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise InputError(src, "cannot open the video (not a video file, or damaged)")
    try:
        fps = fps or float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        scale = min(1.0, MAX_WIDTH / max(w, 1))
        size = (max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2))
        duration = max(end - start, 1.0 / fps)
        out_fps = max(MIN_FPS, min(MAX_FPS, fps, MAX_FRAMES / duration))
        step = max(1, int(round(fps / out_fps)))
        first = max(0, int(np.floor(start * fps + 1e-6)))
        last = max(first, int(np.floor(end * fps + 1e-6)))  # inclusive: the frame shown at the question time
        if first:
            cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        tmp = out.with_name(out.stem + f".part{threading.get_ident()}{SUFFIX}")
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps / step, size)
        if not writer.isOpened():
            raise InputError(tmp, f"OpenCV cannot write {FOURCC} video here")
        written = 0
        try:
            for frame in overlay_frames(cap, fps, track, size, fov_radius, first=first, last=last, step=step):
                writer.write(frame)
                written += 1
        finally:
            writer.release()
        if written == 0:
            tmp.unlink(missing_ok=True)
            raise InputError(src, f"no frames between {start:.3f} s and {end:.3f} s")
        tmp.replace(out)
        return out
    finally:
        cap.release()
