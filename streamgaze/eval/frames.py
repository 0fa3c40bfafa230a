"""Frames for a clip: which frames (evenly over the clip, always one within a frame period of its end), read by
seeking with OpenCV (two captures in parallel when a core is free), resized (long side <= 512 px), gaze drawn for the overlay mode, JPEG-encoded; plus the
salience heat map and the scanpath text of tasks.md 3.3. Everything a question needs from the store is
loaded once per video into a `VideoContext`.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError
from streamgaze.eval.frame_cache import FrameCounts, jpegs_once, track_digest, variant, video_identity
from streamgaze.gaze.geometry import OVERLAY_FOV_RADIUS
from streamgaze.gaze.overlay import GazeTrack, fetch_numpy, overlay_frame, resolve_video_path

MAX_SIDE = 512
JPEG_QUALITY = 85
SALIENCE_SIGMA = 0.05  # of the frame width
GRAB_GAP = 16  # grab forward when the next frame is at most this many frames ahead, else seek
PARALLEL_MIN = 8  # requests of this many frames or more are read by two captures in parallel
MAX_IDLE_READERS = 4


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
    fov_radius: float = OVERLAY_FOV_RADIUS
    gaze_drawn: bool = False  # the video already shows the gaze (a released gaze_viz video): never drawn again
    has_gaze: bool = True  # raw gaze known (from a store); False for a video read from a released folder

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # guards the JPEG cache and the idle readers
        self._idle: list[FrameReader] = []
        self._cache: OrderedDict = OrderedDict()
        self.disk_cache = None  # a `streamgaze.eval.frame_cache.FrameCache` set by the runner, or None
        self.counts = FrameCounts()  # frames decoded and served from a cache
        self._identity: str | None = None
        self._pending: dict = {}  # (index, overlay) -> threading.Event: being decoded by another request
        self._fresh: set = set()  # (index, overlay) decoded ahead (`streamgaze.eval.prefetch`), not yet counted

    @classmethod
    def load(cls, store, video_id: str, fov_radius: float = OVERLAY_FOV_RADIUS) -> "VideoContext":
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

    @classmethod
    def from_file(cls, video_id: str, info, *, gaze_drawn: bool = False) -> "VideoContext":
        """A video read from a file with no raw gaze (a released benchmark folder); ``info`` is its
        `streamgaze.gaze.video.VideoInfo`. ``gaze_drawn``: the frames already show the gaze (``gaze_viz_video``)."""
        empty = np.zeros(0)
        return cls(video_id, Path(info.path), float(info.fps), int(info.width), int(info.height), int(info.n_frames),
                   GazeTrack(empty, empty, empty), gaze_drawn=gaze_drawn, has_gaze=False)

    # -- frames -------------------------------------------------------------------------------------
    def _reader(self) -> "FrameReader":
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return FrameReader(self.path, self.video_id)

    def _give_back(self, reader: "FrameReader") -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_READERS:
                self._idle.append(reader)
                return
        reader.close()

    def raw_frames(self, indices: list[int], prepare=None) -> dict:
        """Decoded BGR frames by index (each passed through ``prepare(frame, idx)`` if given, in the decoding
        thread)."""
        return self._read(indices, prepare)

    def _read(self, indices: list[int], prepare=None) -> dict:
        """Frames by index, each passed through ``prepare(frame, idx)`` (if given) in the thread that decoded it.
        Requests of `PARALLEL_MIN` frames or more are split in contiguous halves read by two captures in parallel
        (OpenCV releases the GIL while decoding) when `_parallel_ok` says a second core is free, so resizing and
        JPEG encoding are split too."""
        idx = sorted(set(int(i) for i in indices))
        with _in_flight() as active:
            if len(idx) >= PARALLEL_MIN and _parallel_ok(active):
                half = len(idx) // 2
                parts = [idx[:half], idx[half:]]
                readers = [self._reader(), self._reader()]
                try:
                    fut = _pool().submit(readers[1].read, parts[1], None, prepare)
                    try:
                        first = readers[0].read(parts[0], None, prepare)
                    finally:
                        second = fut.result()
                finally:
                    for r in readers:
                        self._give_back(r)
                return {**first, **second}
            reader = self._reader()
            try:
                return reader.read(idx, None, prepare)
            finally:
                self._give_back(reader)

    def _prepare(self, frame: np.ndarray, idx: int, overlay: bool) -> np.ndarray:
        """Resize (long side <= MAX_SIDE) and, for the overlay mode, draw the gaze as `render overlay` does."""
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        if scale < 1.0:
            # bilinear is half the cost of INTER_AREA and indistinguishable from it down to half size (640x480 ->
            # 512x384: PSNR 51 dB between the two); below half size only INTER_AREA avoids aliasing
            interp = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
            frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        if overlay and not self.gaze_drawn:
            frame = overlay_frame(frame, self.track, idx, self.fps, self.fov_radius)
        return frame

    def frame(self, idx: int, overlay: bool) -> np.ndarray:
        """The resized BGR frame ``idx`` (gaze drawn if ``overlay``)."""
        return self._prepare(self.raw_frames([idx])[idx], idx, overlay)

    def jpegs(self, indices: list[int], overlay: bool) -> list[bytes]:
        """JPEG bytes of the frames ``indices`` (in sorted order): from memory, from the on-disk frame cache, or
        decoded, each frame once even when several requests want it at the same time (`jpegs_once`)."""
        return jpegs_once(self, sorted(indices), overlay)

    def encode_jpegs(self, indices: list[int], overlay: bool) -> dict[int, bytes]:
        """Decode, resize (gaze drawn if ``overlay``) and JPEG-encode the frames ``indices``; no cache."""
        import cv2

        def encode(frame: np.ndarray, i: int) -> bytes:  # runs in the decoding thread, right after the decode
            ok, buf = cv2.imencode(".jpg", self._prepare(frame, i, overlay), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            return buf.tobytes()

        return self._read(indices, encode)

    def _disk_keys(self, indices: list[int], overlay: bool) -> dict[int, str]:
        """The frame cache's key of each frame: the video file's identity, the index, the size, the overlay."""
        if self._identity is None:
            self._identity = video_identity(self.path)
        if not overlay:
            drawn = "plain"
        elif self.gaze_drawn:
            drawn = "in-video"
        else:
            drawn = "gaze-" + track_digest(self.track.t, self.track.x, self.track.y, [self.fov_radius, self.fps])
        how = variant(MAX_SIDE, JPEG_QUALITY, drawn)
        return {i: self.disk_cache.key(self._identity, i, how) for i in indices}

    def salience_jpeg(self, end_idx: int, t0: float, t1: float) -> bytes:
        """Heat map of the valid gaze in [t0, t1] (a Gaussian per sample, sigma 0.05 of the width, summed,
        scaled to [0, 1], JET colour map) blended 50 % over frame ``end_idx``."""
        import cv2

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
        """Units (``episodes`` or ``fixations``) that start in [t0, t1), the last ``limit``. A unit still going on
        at t1 is cut there and placed at the mean of its samples up to t1 (its stored centre uses later gaze;
        dropped if it has none yet), so the text shows nothing measured after t1."""
        arr = self.episodes if units == "episodes" else self.fixations
        if not len(arr):
            return []
        sel = arr[(arr[:, 0] >= t0 - 1e-9) & (arr[:, 0] < t1)]
        out = []
        for a, b, x, y in sel:
            if b > t1:
                xs, ys = self.track.between(a, t1)
                if not len(xs):
                    continue
                b, x, y = t1, xs.mean(), ys.mean()
            out.append((float(a), float(b), float(x), float(y)))
        return out[-limit:]

    def gaze_until(self, mode: str, indices: list[int], t_window: tuple[float, float],
                   units: list[tuple[float, float, float, float]] | None = None) -> float | None:
        """The time of the newest gaze sample a request shows in ``mode``: the overlay's samples at ``indices``, the
        salience map's over ``t_window``, the scanpath ``units``' ends. None when no gaze of ours is shown (``none``,
        or frames with the gaze already drawn in, whose source the run cannot know)."""
        if mode == "overlay" and not self.gaze_drawn:
            return self.track.last_used([i / self.fps for i in indices], 1.0 / self.fps)
        if mode == "salience":
            return self.track.last_between(*t_window)
        if mode == "scanpath-text" and units:
            return max(b for _, b, _, _ in units)
        return None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for r in idle:
            r.close()


class FrameReader:
    """One OpenCV capture with a known position. To reach frame ``i`` it grabs forward when ``i`` is at most
    `GRAB_GAP` frames ahead, and seeks otherwise: OpenCV's seek always decodes forward from a keyframe at least
    16 frames back, so a short hop is cheaper by grabbing (bench/bench_eval.py measures both). One decoder
    thread per capture: frame threading makes every seek flush a pipeline, and parallelism comes from reading
    with two captures instead (`VideoContext._read`)."""

    def __init__(self, path: Path, video_id: str = ""):
        import cv2

        self.path, self.video_id = path, video_id
        self.cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not self.cap.isOpened():
            self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise InputError(path, f"cannot open the video of {video_id!r}")
        self.pos = 0  # index of the frame the next read() returns

    def read(self, indices: list[int], grab_gap: int | None = None, prepare=None) -> dict:
        """Frames ``indices`` by index (BGR arrays, or ``prepare(frame, idx)`` of each if given)."""
        import cv2

        gap = GRAB_GAP if grab_gap is None else grab_gap
        out: dict[int, np.ndarray] = {}
        for idx in sorted(set(indices)):
            ahead = idx - self.pos
            if 0 <= ahead <= gap:
                for _ in range(ahead):
                    if not self.cap.grab():
                        break
            else:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, frame = self.cap.read()
            if not ok:
                self.pos = -(10**9)  # unknown: seek next time
                raise InputError(self.path, f"cannot read frame {idx} of {self.video_id!r}")
            self.pos = idx + 1
            out[idx] = frame if prepare is None else prepare(frame, idx)
        return out

    def close(self) -> None:
        self.cap.release()


_POOL = None


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="frames")
    return _POOL


_ACTIVE = 0  # frame requests being read in this process
_ACTIVE_LOCK = threading.Lock()


@contextmanager
def _in_flight():
    global _ACTIVE
    with _ACTIVE_LOCK:
        _ACTIVE += 1
        active = _ACTIVE
    try:
        yield active
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE -= 1


def _parallel_ok(active: int) -> bool:
    """Whether a request may take a second capture. STREAMGAZE_FRAME_READERS=1 (never) or 2 (always) decide;
    otherwise (auto) only when no other request of this process is being read (the runner prepares several
    questions at once, and then they already keep the cores busy) and the 1-minute load average, which counts
    this process, leaves about a core free. Two captures cost no more CPU than one (each decodes its own
    frames), so this only decides whether to take a second core."""
    mode = os.environ.get("STREAMGAZE_FRAME_READERS", "auto")
    if mode in ("1", "2"):
        return mode == "2"
    cores = os.cpu_count() or 1
    if cores < 2 or active > 1:
        return False
    try:
        return os.getloadavg()[0] <= cores - 0.5
    except (AttributeError, OSError):  # no load average (Windows)
        return True
