"""What the fixation stage reads from the scene video (OpenCV, imported on use): the HSV-histogram
consistency of an episode's frames (`scene_consistent`) and the global scene motion (`scene_flow`, for
``ivt_flow``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamgaze.errors import StreamGazeError
from streamgaze.gaze.video import _capture, read_frames_at


def scene_consistent(
    video_path: str | Path,
    fps: float,
    t_start: float,
    t_end: float,
    *,
    n_frames: int = 8,
    min_corr: float = 0.9,
    black_mean: float = 10.0,
) -> bool:
    """The reference's scene-consistency test for one episode.

    Reads ``n_frames`` frames evenly spaced over [t_start, t_end] by seeking; frames with mean intensity
    < ``black_mean`` are ignored; the HSV histogram (H 50 x S 60 bins) of every other frame must correlate
    >= ``min_corr`` with the first non-black one. An episode whose frames are all black (or unreadable) fails.
    """
    import cv2

    times = np.linspace(t_start, t_end, max(int(n_frames), 1))
    frames = read_frames_at(video_path, np.round(times * fps).astype(int))
    hists = []
    for fr in frames:
        if fr is None or float(fr.mean()) < black_mean:
            continue
        hsv = cv2.cvtColor(fr, cv2.COLOR_BGR2HSV)
        h = cv2.calcHist([hsv], [0, 1], None, [50, 60], [0, 180, 0, 256])
        cv2.normalize(h, h, 0, 1, cv2.NORM_MINMAX)
        hists.append(h)
    if not hists:
        return False
    return all(cv2.compareHist(hists[0], h, cv2.HISTCMP_CORREL) >= min_corr for h in hists[1:])


# ---------------------------------------------------------------------------------------------------------
# Scene motion (for the head-motion-compensated I-VT, ``ivt_flow``)

_FLOW_CACHE: dict = {}


def scene_flow(video_path: str | Path, *, width: int = 160, fps: float | None = None):
    """Global scene motion of a video: ``(fps, dx, dy)`` with ``dx[k], dy[k]`` the displacement of the scene
    content from frame k to k + 1 in normalised image units (fraction of the width / height).

    Frames are read in order, converted to grey and downscaled to ``width`` px; OpenCV's Farneback dense
    flow between consecutive frames, and its median over the image (robust to hands and moving objects),
    is the frame pair's motion. Cached per (path, size, mtime, width).
    """
    import cv2

    path = Path(video_path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, int(width))
    if key not in _FLOW_CACHE:
        cap = _capture(path)
        try:
            vfps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            dxs, dys = [], []
            prev = None
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                h, w = frame.shape[:2]
                sw = max(16, min(int(width), w))
                sh = max(16, int(round(h * sw / w)))
                g = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (sw, sh), interpolation=cv2.INTER_AREA)
                if prev is not None:
                    f = cv2.calcOpticalFlowFarneback(prev, g, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                    dxs.append(float(np.median(f[..., 0])) / sw)
                    dys.append(float(np.median(f[..., 1])) / sh)
                prev = g
        finally:
            cap.release()
        _FLOW_CACHE[key] = (vfps, np.asarray(dxs), np.asarray(dys))
    vfps, dx, dy = _FLOW_CACHE[key]
    fps = fps or vfps
    if not fps or fps <= 0:
        raise StreamGazeError(f"{path}: cannot tell the video's frame rate; pass video_fps")
    return float(fps), dx, dy
