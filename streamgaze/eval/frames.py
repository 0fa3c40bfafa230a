"""Frames for a clip: which frames (evenly over the clip, always one within a frame period of its end), read by
seeking with OpenCV, resized (long side <= 512 px), gaze drawn for the overlay mode, JPEG-encoded; plus the
salience heat map and the scanpath text of tasks.md 3.3. Everything a question needs from the store is
loaded once per video into a `VideoContext`.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..render import FOV_RADIUS, GazeTrack, draw_gaze, fetch_numpy, resolve_video_path

MAX_SIDE = 512
JPEG_QUALITY = 85
SALIENCE_SIGMA = 0.05  # of the frame width


def frame_indices(clip: tuple[float, float], fps: float, n_frames: int, n: int) -> list[int]:
    """Up to ``n`` distinct frame indices evenly over [start, end]; the last is the frame shown at ``end``
    (time in (end - 1/fps, end]), or the video's last frame when the clip runs past it."""
    start, end = float(clip[0]), float(clip[1])
    last_available = max(n_frames - 1, 0) if n_frames > 0 else 10**9
    i1 = min(int(math.floor(end * fps + 1e-6)), last_available)
    i0 = min(max(int(math.ceil(start * fps - 1e-6)), 0), i1)
    if n <= 1:
        return [i1]
    idx = np.unique(np.round(np.linspace(i0, i1, n)).astype(int))
    return [int(i) for i in idx]


@dataclass
class VideoContext:
    """One video's metadata, gaze and gaze units, and a frame reader with a small JPEG cache."""

    video_id: str
    path: Path
    fps: float
    width: int
    height: int
    n_frames: int
    track: GazeTrack
    episodes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # t_start, t_end, x, y
    fixations: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    fov_radius: float = FOV_RADIUS

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._cap = None
        self._cache: OrderedDict = OrderedDict()

    @classmethod
    def load(cls, store, video_id: str, fov_radius: float = FOV_RADIUS) -> "VideoContext":
        rows = store.rows("SELECT * FROM videos WHERE video_id = ?", [video_id])
        if not rows:
            raise InputError(store.path, f"no video {video_id!r} in the store (a question refers to it)")
        v = rows[0]
        path = resolve_video_path(store.path, v.get("path"))
        units = {}
        for table, start, end in (("episodes", "t_start", "t_end"), ("fixations", "t_start", "t_end")):
            cols = fetch_numpy(store, f"SELECT {start}, {end}, x, y FROM {table} WHERE video_id = ? ORDER BY {start}", [video_id])
            units[table] = np.column_stack(cols) if len(cols[0]) else np.zeros((0, 4))
        import cv2

        n_frames = int(v.get("n_frames") or 0)
        fps = float(v.get("fps") or 0)
        width, height = int(v.get("width") or 0), int(v.get("height") or 0)
        if not n_frames or not fps or not width:
            cap = cv2.VideoCapture(str(path))
            n_frames = n_frames or int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            fps = fps or float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
            width = width or int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = height or int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            cap.release()
        if not n_frames and v.get("duration_s"):
            n_frames = int(round(float(v["duration_s"]) * fps))
        return cls(video_id, path, fps, width, height, n_frames, GazeTrack.from_store(store, video_id),
                   units["episodes"], units["fixations"], fov_radius)

    # -- frames -------------------------------------------------------------------------------------
    def _read(self, idx: int) -> np.ndarray:
        import cv2

        if self._cap is None:
            self._cap = cv2.VideoCapture(str(self.path))
            if not self._cap.isOpened():
                raise InputError(self.path, f"cannot open the video of {self.video_id!r}")
        pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))
        if pos != idx:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = self._cap.read()
        if not ok:
            raise InputError(self.path, f"cannot read frame {idx} of {self.video_id!r}")
        return frame

    def frame(self, idx: int, overlay: bool) -> np.ndarray:
        """The resized BGR frame ``idx`` (gaze drawn if ``overlay``); caller holds no lock."""
        import cv2

        frame = self._read(idx)
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        if scale < 1.0:
            frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if overlay:
            x, y, _ = self.track.at([idx / self.fps], 1.0 / self.fps)
            draw_gaze(frame, x[0], y[0], self.fov_radius)
        return frame

    def jpegs(self, indices: list[int], overlay: bool) -> list[bytes]:
        import cv2

        out = []
        with self._lock:
            for idx in sorted(indices):
                k = (idx, overlay)
                data = self._cache.get(k)
                if data is None:
                    ok, buf = cv2.imencode(".jpg", self.frame(idx, overlay), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    data = buf.tobytes()
                    self._cache[k] = data
                    if len(self._cache) > 1024:
                        self._cache.popitem(last=False)
                else:
                    self._cache.move_to_end(k)
                out.append(data)
        return out

    def salience_jpeg(self, end_idx: int, t0: float, t1: float) -> bytes:
        """Heat map of the valid gaze in [t0, t1] (a Gaussian per sample, sigma 0.05 of the width, summed,
        scaled to [0, 1], JET colour map) blended 50 % over frame ``end_idx``."""
        import cv2

        with self._lock:
            frame = self.frame(end_idx, overlay=False)
        h, w = frame.shape[:2]
        gw = 96
        gh = max(1, round(gw * h / w))
        xs, ys = self.track.between(t0, t1)
        hist = np.zeros((gh, gw), dtype=np.float32)
        if len(xs):
            ix = np.clip((xs * gw).astype(int), 0, gw - 1)
            iy = np.clip((ys * gh).astype(int), 0, gh - 1)
            np.add.at(hist, (iy, ix), 1.0)
            hist = cv2.GaussianBlur(hist, (0, 0), SALIENCE_SIGMA * gw)
            if hist.max() > 0:
                hist /= hist.max()
        heat = cv2.applyColorMap((cv2.resize(hist, (w, h)) * 255).astype(np.uint8), cv2.COLORMAP_JET)
        blended = cv2.addWeighted(frame, 0.5, heat, 0.5, 0)
        ok, buf = cv2.imencode(".jpg", blended, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return buf.tobytes()

    def scanpath(self, units: str, t0: float, t1: float, limit: int = 50) -> list[tuple[float, float, float, float]]:
        """Units (``episodes`` or ``fixations``) that start in [t0, t1), ends cut at t1; the last ``limit``."""
        arr = self.episodes if units == "episodes" else self.fixations
        if not len(arr):
            return []
        sel = arr[(arr[:, 0] >= t0 - 1e-9) & (arr[:, 0] < t1)]
        return [(float(a), float(min(b, t1)), float(x), float(y)) for a, b, x, y in sel[-limit:]]

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
