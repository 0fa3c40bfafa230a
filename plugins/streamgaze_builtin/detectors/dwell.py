"""``streamgaze_dwell``: the StreamGaze reference's anchor dwell detector, reproduced exactly."""
from __future__ import annotations

import numpy as np

from streamgaze.plugins.api import frame_index, pairwise_frame_gaze


class StreamGazeDwell:
    """The StreamGaze reference's anchor dwell detector (``extract_fixation_segments``), reproduced exactly.

    A segment lasts while each sample stays within ``radius`` (normalised units) of the segment's *first*
    sample; a sample outside it ends the segment unless it came <= ``gap_s`` after the previous sample (then
    it is skipped as a flick). Segments lasting >= ``min_duration_s`` (last - first sample time) are kept.
    Defaults are the reference's EGTEA call (radius 0.15 = 96 px of 640, 2 s, 0.01 s); Ego4D used 0.088,
    EgoExoLearn and HoloAssist 96 / frame width. Invalid samples are left out before detection (the reference
    saw only tracked frames). Python loop over segments only; each search is a numpy scan.

    With ``video_fps`` > 0 (`run_fixations` passes the video's rate), the reference's first step comes before:
    the gaze clipped to [0, 1] and folded to one value per video frame in arrival order (``(old + new) / 2``,
    `streamgaze.gaze.align.pairwise_frame_gaze`), at the frame's start time; the segments found on the frames are
    returned as the samples of their frames.
    """

    defaults = {"radius": 0.15, "min_duration_s": 2.0, "gap_s": 0.01, "video_fps": 0.0}
    uses_degrees = False  # radius is in normalised units: no angular scale needed

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        idx = np.flatnonzero(ok)
        fps = float(p["video_fps"] or 0.0)
        if fps <= 0:
            s, e = dwell_segments(t[idx], x[idx], y[idx], p["radius"], p["min_duration_s"], p["gap_s"])
            return (s, e) if s.size == 0 else (idx[s], idx[e - 1] + 1)
        frames, fx, fy = pairwise_frame_gaze(t[idx], np.clip(x[idx], 0.0, 1.0), np.clip(y[idx], 0.0, 1.0), fps=fps)
        s, e = dwell_segments(frames / fps, fx, fy, p["radius"], p["min_duration_s"], p["gap_s"])
        frame_of = frame_index(t[idx], fps)  # non-decreasing with t
        first = np.searchsorted(frame_of, frames[s], side="left")
        last = np.searchsorted(frame_of, frames[e - 1], side="right") - 1
        return idx[first], idx[last] + 1


def dwell_segments(t, x, y, radius: float, min_duration_s: float, gap_s: float):
    """Anchor segments [s, e) of the reference (see `StreamGazeDwell`) on clean arrays."""
    n = t.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dt_prev = np.empty(n)
    dt_prev[0] = np.inf
    dt_prev[1:] = np.diff(t)
    long_gap = dt_prev > gap_s
    out_s, out_e = [], []
    a = 0
    while a < n:
        end = n
        step = 256
        lo = a + 1
        while lo < n:
            hi = min(n, lo + step)
            d = np.sqrt((x[lo:hi] - x[a]) ** 2 + (y[lo:hi] - y[a]) ** 2)
            brk = np.flatnonzero((d > radius) & long_gap[lo:hi])
            if brk.size:
                end = lo + int(brk[0])
                break
            lo = hi
            step *= 4
        if t[end - 1] - t[a] >= min_duration_s:
            out_s.append(a)
            out_e.append(end)
        a = end
    return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64)
