"""Scene-video probing and frame access with OpenCV.

`probe_video` reads a video's metadata (and decodes its first frame, so an undecodable file fails here,
at ingest, not later). `read_frames_at` reads frames by seeking (``cv2.CAP_PROP_POS_FRAMES``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError

# FFmpeg's own log lines ("moov atom not found") would otherwise precede our one-line error.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


@dataclass(frozen=True)
class VideoInfo:
    """What the store keeps about a scene video. ``path`` is absolute."""

    path: Path
    fps: float
    width: int
    height: int
    n_frames: int
    duration_s: float


_TEXT_CODECS = {b"ansi", b"bin ", b"xbin", b"idf "}


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _capture(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(path, "cannot open video (not a video file, or a codec OpenCV lacks)")
    return cap


def probe_video(path: str | Path) -> VideoInfo:
    """fps, size, frame count and duration of a video; a missing, empty or unreadable file is an `InputError`."""
    import cv2

    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise InputError(path, "no such video file")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a video file")
    if path.stat().st_size == 0:
        raise InputError(path, "empty video file")
    with open(path, "rb") as fh:
        head = fh.read(512)
    if _looks_like_text(head):
        raise InputError(path, "looks like a text file, not a video")
    cap = _capture(path)
    try:
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0).to_bytes(4, "little", signed=False)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, frame = cap.read()
    finally:
        cap.release()
    if fourcc in _TEXT_CODECS:
        raise InputError(path, "not a video (FFmpeg reads it as text)")
    if not ok or frame is None:
        raise InputError(path, "video has no decodable frame")
    if width <= 0 or height <= 0:
        height, width = frame.shape[:2]
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(path, "video reports no frame rate")
    if n_frames <= 0:
        raise InputError(path, "video reports no frames")
    return VideoInfo(path, fps, width, height, n_frames, n_frames / fps)


def read_frames_at(path: str | Path, frame_indices, *, fps: float | None = None) -> list[np.ndarray | None]:
    """BGR frames at the given indices, by seeking; ``None`` where a frame cannot be read."""
    import cv2

    cap = _capture(Path(path))
    out: list[np.ndarray | None] = []
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        for idx in frame_indices:
            idx = int(idx)
            if n > 0:
                idx = min(max(idx, 0), n - 1)
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, frame = cap.read()
            out.append(frame if ok else None)
    finally:
        cap.release()
    return out
