"""Gaze drawn on video: the one drawing function (green gaze dot, red FOV circle) and the overlay renderer.

`draw_gaze` is shared by ``streamgaze render overlay`` and the eval's ``--gaze-prompt overlay`` mode, so both
show exactly the same marks. `gaze_at` finds, for many frame times at once, the latest valid gaze sample at or
before each time within a tolerance (numpy searchsorted, no per-frame Python search): a frame never shows gaze
measured after it, so a question's frames show nothing from after its time (`streamgaze audit run` checks it).
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamgaze.errors import InputError
from streamgaze.gaze.geometry import OVERLAY_FOV_RADIUS
from streamgaze.paths import check_outputs, safe_name, temp_name
from streamgaze.progress import stage
from streamgaze.store import open_store

DOT_RADIUS = 0.012  # of the frame width (at least 3 px)
GREEN = (0, 255, 0)  # BGR
RED = (0, 0, 255)


@dataclass
class GazeTrack:
    """The valid gaze samples of one video, sorted by time (normalised top-left coordinates)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def from_store(cls, store, video_id: str) -> "GazeTrack":
        """``store`` is an open `streamgaze.store.Store`."""
        cols = fetch_numpy(
            store,
            "SELECT t_s, x, y FROM gaze WHERE video_id = ? AND valid AND x IS NOT NULL AND y IS NOT NULL "
            "AND isfinite(x) AND isfinite(y) ORDER BY t_s",
            [video_id],
        )
        return cls(*cols)

    def at(self, times, max_dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return gaze_at(self.t, self.x, self.y, times, max_dt)

    def last_used(self, times, max_dt: float) -> float | None:
        """The time of the latest sample `at` takes for ``times`` (None when it takes none): what the run records
        as the newest gaze a request showed."""
        idx, found = sample_at(self.t, times, max_dt)
        return float(self.t[idx[found]].max()) if found.any() else None

    def last_between(self, t0: float, t1: float) -> float | None:
        """The time of the latest sample `between` returns (None when there is none)."""
        i0 = int(np.searchsorted(self.t, t0, side="left"))
        i1 = int(np.searchsorted(self.t, t1, side="right"))
        return float(self.t[i1 - 1]) if i1 > i0 else None

    def between(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """x, y of the valid samples with t0 <= t <= t1."""
        i0 = int(np.searchsorted(self.t, t0, side="left"))
        i1 = int(np.searchsorted(self.t, t1, side="right"))
        return self.x[i0:i1], self.y[i0:i1]


def resolve_video_path(store_path, path) -> Path:
    """A stored video path; a relative one is taken from the store's folder when it exists there."""
    src = Path(path or "")
    if not src.is_absolute():
        beside = Path(store_path).parent / src
        if beside.exists() or not src.exists():
            return beside
    return src


def fetch_numpy(store, sql: str, params: list) -> list[np.ndarray]:
    """The columns of a query as float arrays (NULL -> NaN)."""
    data = store.con.execute(sql, params).fetchnumpy()
    out = []
    for col in data.values():
        arr = np.ma.filled(np.ma.asarray(col).astype(float), np.nan) if np.ma.isMaskedArray(col) else np.asarray(col, dtype=float)
        out.append(arr)
    return out


def sample_at(gt: np.ndarray, times, max_dt: float) -> tuple[np.ndarray, np.ndarray]:
    """For each time: the index of the latest sample at or before it and whether it lies within ``max_dt``;
    ``gt`` sorted. A sample after the time is never taken: the gaze shown with a frame was measured by then."""
    times = np.asarray(times, dtype=float)
    if len(gt) == 0 or times.size == 0:
        return np.zeros(times.shape, dtype=int), np.zeros(times.shape, dtype=bool)
    right = np.searchsorted(gt, times + 1e-9, side="right")  # first sample after the time (1 ns slack for rounding)
    idx = np.clip(right - 1, 0, len(gt) - 1)
    found = (right > 0) & (times - gt[idx] <= max_dt + 1e-9)
    return idx, found


def gaze_at(gt: np.ndarray, gx: np.ndarray, gy: np.ndarray, times, max_dt: float):
    """For each time: (x, y, found) of the latest sample at or before it (`sample_at`), if within ``max_dt``."""
    idx, found = sample_at(gt, times, max_dt)
    if len(gt) == 0:
        nan = np.full(found.shape, np.nan)
        return nan, nan.copy(), found
    x = np.where(found, gx[idx], np.nan)
    y = np.where(found, gy[idx], np.nan)
    return x, y, found


def draw_gaze(frame: np.ndarray, x: float, y: float, fov_radius: float = OVERLAY_FOV_RADIUS) -> np.ndarray:
    """Draw (in place, and return) a filled green dot at the gaze point and a red FOV circle around it.

    ``x, y`` normalised top-left; ``fov_radius`` a fraction of the frame width. NaN draws nothing.
    """
    import cv2

    if not (np.isfinite(x) and np.isfinite(y)):
        return frame
    h, w = frame.shape[:2]
    cx, cy = int(round(x * w)), int(round(y * h))
    thick = max(1, int(round(w / 320)))
    cv2.circle(frame, (cx, cy), max(2, int(round(fov_radius * w))), RED, thick, cv2.LINE_AA)
    cv2.circle(frame, (cx, cy), max(3, int(round(DOT_RADIUS * w))), GREEN, -1, cv2.LINE_AA)
    return frame


def overlay_frame(frame: np.ndarray, track: GazeTrack, idx: int, fps: float, fov_radius: float = OVERLAY_FOV_RADIUS) -> np.ndarray:
    """Frame ``idx`` with the gaze drawn by `draw_gaze` (the latest valid sample at or before the frame
    time, within one frame period), exactly as `streamgaze render overlay` draws it."""
    x, y, _ = track.at([idx / fps], 1.0 / fps)
    return draw_gaze(frame, x[0], y[0], fov_radius)


DEFAULT_SCALE = 0.5  # see render_overlay: the mp4v encoder dominates, and its cost follows the pixel count


def render_overlay(store_path, out_dir, video_id: str | None = None, *, fov_radius: float = OVERLAY_FOV_RADIUS,
                   scale: float = DEFAULT_SCALE, fps: float | None = None) -> list[Path]:
    """Write ``<video_id>_overlay.mp4`` (MPEG-4 part 2, ``mp4v``: the encoder every OpenCV build has) for one
    video or every video of the store; returns the paths. The id is made a safe file name (`overlay_name`), and
    every output path is checked before the first frame is encoded.

    The encoder is most of the time (3 min of 640x480 at 24 fps: ~11 s at full size, ~4.5 s at half size,
    ~2.3 s at half size and 12 fps; see docs/eval.md), so the default is half size (``scale`` 0.5) at the
    source frame rate: gaze motion stays smooth and the dot is still drawn at the output resolution.
    ``fps`` below the source's keeps every k-th frame (k = round(source / fps)); the gaze is looked up at
    each kept frame's own time."""
    out_dir = Path(out_dir)
    with open_store(store_path, read_only=True) as store:
        videos = store.rows("SELECT video_id, path, fps FROM videos ORDER BY video_id")
        if video_id is not None:
            videos = [v for v in videos if v["video_id"] == video_id]
            if not videos:
                raise InputError(store_path, f"no video {video_id!r} in the store")
        tracks = {v["video_id"]: GazeTrack.from_store(store, v["video_id"]) for v in videos}
    targets = check_outputs(out_dir, [overlay_name(v["video_id"]) for v in videos])  # all checked, nothing written yet
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for v in videos:
        src = resolve_video_path(store_path, v["path"])
        out = targets[overlay_name(v["video_id"])]
        written.append(_render_one(src, v, tracks[v["video_id"]], out, fov_radius, scale, fps))
    return written


def overlay_name(video_id: str) -> str:
    """``<video_id>_overlay.mp4``, the id made a safe file name (`streamgaze.paths.safe_name`)."""
    return f"{safe_name(video_id)}_overlay.mp4"


def overlay_frames(cap, fps: float, track: GazeTrack, size: tuple[int, int], fov_radius: float, *, first: int = 0,
                   last: int | None = None, step: int = 1, stop=None):
    """Frames ``first``..``last`` (inclusive; to the end when None) of an open capture, every ``step``-th kept,
    resized to ``size``, with the gaze drawn: what the overlay video and the review clips show."""
    import cv2

    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    known_last = last if last is not None else int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) - 1
    gx, gy, _ = track.at(np.arange(first, max(known_last, first) + 1) / fps, 1.0 / fps)  # frame i shows i / fps
    i = first
    while (last is None or i <= last) and not (stop is not None and stop.is_set()):
        if (i - first) % step:
            if not cap.grab():  # a skipped frame: decoded, never converted
                break
            i += 1
            continue
        ok, frame = cap.read()
        if not ok:
            break
        if size != (w, h):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        k = i - first
        if k < len(gx):
            x, y = gx[k], gy[k]
        else:  # the container under-reported its frame count
            xs, ys, _ = track.at([i / fps], 1.0 / fps)
            x, y = xs[0], ys[0]
        yield draw_gaze(frame, x, y, fov_radius)
        i += 1


def _render_one(src: Path, v: dict, track: GazeTrack, out: Path, fov_radius: float, scale: float,
                out_fps: float | None = None) -> Path:
    """Decode and draw in a thread, encode in this one (OpenCV releases the GIL in both), bounded queue."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise InputError(src, f"cannot open the video of {v['video_id']!r}")
    fps = float(v["fps"] or cap.get(cv2.CAP_PROP_FPS) or 30.0)
    step = max(1, int(round(fps / out_fps))) if out_fps else 1
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    size = (max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)) if scale != 1.0 else (w, h)
    tmp = temp_name(out).with_suffix(".mp4")  # OpenCV picks the container by the suffix
    frames: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for frame in overlay_frames(cap, fps, track, size, fov_radius, step=step, stop=stop):
                frames.put(frame)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failure.append(exc)
        finally:
            frames.put(None)

    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps / step, size)
    if not writer.isOpened():
        cap.release()
        raise InputError(tmp, "OpenCV cannot write mp4v video here")
    reader = threading.Thread(target=produce, daemon=True)
    reader.start()
    try:
        with stage(f"overlay {v['video_id']}"[:24], total=n or None) as advance:
            k = 0
            while True:
                frame = frames.get()
                if frame is None:
                    break
                writer.write(frame)
                k += 1
                if k % 64 == 0:
                    advance(64 * step)
    finally:
        stop.set()
        while reader.is_alive():
            try:
                frames.get_nowait()
            except queue.Empty:
                reader.join(0.05)
        writer.release()
        cap.release()
    if failure:
        tmp.unlink(missing_ok=True)
        raise failure[0]
    tmp.replace(out)
    return out
