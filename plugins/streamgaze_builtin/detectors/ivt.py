"""I-VT (``ivt``) and I-VT with head-motion compensation (``ivt_flow``), with their gap filling and merge steps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamgaze.plugins.api import (
    InputError,
    StreamGazeError,
    check_times,
    compiled_ivt,
    compiled_threads,
    events_columns,
    events_table,
    ivt_pass,
    ok_from_bad,
    parallel_ranges,
    runs,
    scene_flow,
    slow_mask,
)
from streamgaze_builtin.detectors.common import max_gap_s, median_dt


class IVT:
    """I-VT: samples slower than a velocity threshold, grouped into runs; vectorised numpy, no per-sample loop.

    Speed is the central difference (one-sided next to an invalid sample), with no smoothing: at 24-30 Hz a
    Savitzky-Golay window would be longer than a saccade. Invalid/NaN samples and time gaps split fixations.

    Parameters (defaults chosen for head-mounted scene-camera gaze at 30-200 Hz):

    - ``threshold_deg_s`` = 40: between the 30 deg/s used for screen trackers and the 50+ deg/s needed when
      head motion and VOR add image motion; at 120 Hz with ~0.3 deg noise, central-difference noise speed is
      ~25 deg/s, so 40 keeps most fixation samples and still catches saccades (> 100 deg/s).
    - ``threshold_units_s`` = None: if set, compare the raw speed in coordinate units/s instead (no degrees).
    - ``min_duration_ms`` = 60 and ``min_samples`` = 3: a fixation must satisfy both, so the stricter wins
      (60 ms is the usual lower bound of fixation duration; 3 samples = ~66-100 ms at 30 Hz, where 60 ms alone
      would accept 2 samples, too few to tell a fixation from noise). Duration = last - first sample time.
    - ``velocity_window_ms`` = 20: the speed at a sample is taken between the samples about this far apart around
      it (half a window either side, at least the neighbours; cut short at missing samples), as Tobii's I-VT
      filter does (20 ms): at 30-120 Hz that is the neighbours (the central difference); at 300 Hz 3 samples
      either side, at 1000 Hz 10, so sample noise does not swamp the speed (on Hooge et al.'s human-coded
      300 Hz data kappa rose from 0.02 with neighbours, docs/gaze.md). 0: always the neighbours.
    - ``max_gap_ms`` = 100: consecutive samples further apart than max(this, 2.5 x median dt) split a fixation
      (missing rows, e.g. dropped frames, are treated as missing data).
    - ``aspect`` = 1.0: height/width of the frame, so normalised y distances are scaled to x's degrees
      (`run_fixations` sets it from the video).
    - ``gap_fill_ms`` = 0 (off): runs of missing samples whose bordering valid samples are at most this far
      apart (Tobii's I-VT filter uses 75 ms) are linearly interpolated before detection, so a short dropout
      no longer splits a fixation. Filled samples still do not count in ``n_samples`` or the centroid.
    - ``merge_ms`` = 0 (off) and ``merge_deg`` = 0.5: consecutive fixations at most ``merge_ms`` apart
      (first sample of the next - last sample of the previous) whose centroids are at most ``merge_deg``
      apart are joined (Tobii: 75 ms, 0.5 deg); applied after the minimum-duration filter. The merged event spans the samples between; its centroid averages all its ok samples.
    - ``pso_ms`` = 0 (off): a fixation that begins right where a fast stretch ended (the sample before it usable
      and at most a time gap away) loses its first ``pso_ms`` (in median steps): the post-saccadic oscillation,
      which a 20 ms speed window at 250+ Hz folds into the fixation while human coders label it apart; the
      minimum sample count and duration then apply again. The centroid drops the trimmed samples.

    ``device_defaults["screen"]`` (used by `run_fixations` for screen trackers, docs/gaze.md "Device classes"):
    ``pso_ms`` = 20 (below the ~24 ms mean glissade of Nystrom & Holmqvist 2010); the threshold stays 40 deg/s
    (30 lost fast pursuit and noisy 300 Hz data in the measurements there).
    """

    defaults = {
        "threshold_deg_s": 40.0,
        "threshold_units_s": None,
        "min_duration_ms": 60.0,
        "min_samples": 3,
        "max_gap_ms": 100.0,
        "velocity_window_ms": 20.0,
        "aspect": 1.0,
        "gap_fill_ms": 0.0,
        "merge_ms": 0.0,
        "merge_deg": 0.5,
        "pso_ms": 0.0,
    }
    device_defaults = {"screen": {"pso_ms": 20.0}}

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        return self._detect(t, x, y, ok, deg_per_unit, p)

    def fused(self, t, x, y, valid, *, deg_per_unit, want_range=False, **params):
        """`detect`'s fast path: usability (finite t, x, y and ``valid``), the range check and the speed test
        in one pass; returns ``(events table, big)`` (the times checked: `check_times`) or None (gap filling
        needs the full mask first: `detect` then takes the ``__call__`` path). Without merge, one compiled loop
        (`streamgaze.gaze.fixations.ivt.loop`, the same table bit for bit) when it was built; else the chunked numpy pass
        (`ivt_pass`)."""
        p = {**self.defaults, **params}
        if p["gap_fill_ms"] > 0:
            return None
        threshold, (max_gap, half, pso) = self._threshold(p, deg_per_unit), self._steps(t, p)
        loop = compiled_ivt() if p["merge_ms"] <= 0 else None
        if loop is not None:
            s, e, t0, t1, mx, my, cnt, big, down = loop.ivt_events(
                t, x, y, valid, threshold=threshold, aspect=p["aspect"], max_gap_s=max_gap,
                min_samples=int(p["min_samples"]), min_duration_s=p["min_duration_ms"] / 1000.0,
                want_range=want_range, half_span=half, pso_samples=pso,
                run_parts=lambda part, n: parallel_ranges(part, 0, n, threads=compiled_threads()))
            check_times(t, down)
            return events_columns(s, e, t0, t1, mx, my, cnt), big
        if half > 1 or pso > 0:  # the window test (`span_slow_mask`) or the trim: the __call__ path
            return None
        check_times(t)
        slow, gap, bad, big = ivt_pass(t, x, y, valid, threshold, aspect=p["aspect"], max_gap_s=max_gap,
                                       want_range=want_range)
        if want_range and big > 2.0:  # `detect` raises
            return None, big
        s, e = self._events(t, x, y, slow, gap, deg_per_unit, p, lambda: ok_from_bad(t.size, bad))
        # without merge, runs of slow samples hold no not-ok sample: none for the table to look for
        return events_table(t, x, y, None, s, e, bad=bad if p["merge_ms"] > 0 else bad[:0]), big

    @staticmethod
    def _threshold(p, deg_per_unit):
        return float(p["threshold_units_s"]) if p["threshold_units_s"] is not None else p["threshold_deg_s"] / deg_per_unit

    @staticmethod
    def _steps(t, p) -> tuple[float, int, int]:
        """From one median sample interval: the time gap that splits (`max_gap_s`), the samples either side of
        the speed window (half of ``velocity_window_ms`` in median steps, >= 1) and the samples ``pso_ms`` trims."""
        dt = median_dt(t)
        half = max(1, int(np.floor(p["velocity_window_ms"] / 2000.0 / dt + 0.5))) if dt > 0 else 1
        pso = int(np.floor(p["pso_ms"] / 1000.0 / dt + 0.5)) if dt > 0 and p["pso_ms"] > 0 else 0
        return max_gap_s(dt, p), half, pso

    def _detect(self, t, x, y, ok, deg_per_unit, p, *, shift=None):
        """``shift``: optional (sx, sy) per sample subtracted from x, y for the speed only (ivt_flow)."""
        xo, yo = x, y
        if p["gap_fill_ms"] > 0:
            x, y, ok = fill_gaps(t, x, y, ok, p["gap_fill_ms"] / 1000.0)
        if shift is not None:
            x, y = x - shift[0], y - shift[1]
        max_gap, half, pso = self._steps(t, p)
        slow, gap = slow_mask(t, x, y, ok, self._threshold(p, deg_per_unit), aspect=p["aspect"], max_gap_s=max_gap,
                              half_span=half)
        s, e = self._events(t, xo, yo, slow, gap, deg_per_unit, p, lambda: ok)  # (the filled mask, as before)
        if pso > 0 and s.size:
            s, e = trim_pso(t, xo, yo, ok, s, e, pso, p, max_gap)
        return s, e

    @staticmethod
    def _events(t, xo, yo, slow, gap, deg_per_unit, p, get_ok):
        """Runs of slow samples split at the gaps, the minimum-duration filter, the optional merge (which needs
        the usability mask: ``get_ok()``)."""
        if gap.size:
            # a gap after sample g ends a run at g+1: clearing nothing, we split by marking the run boundary
            s, e = runs(slow)
            cut = gap + 1
            inside = cut[slow[cut - 1] & slow[cut]]
            if inside.size:
                s = np.sort(np.concatenate((s, inside)))
                e = np.sort(np.concatenate((e, inside)))
        else:
            s, e = runs(slow)
        if s.size == 0:
            return s, e
        long = (e - s) >= int(p["min_samples"])  # the cheap test first: fewer times to gather
        s, e = s[long], e[long]
        keep = (t[e - 1] - t[s]) >= p["min_duration_ms"] / 1000.0 - 1e-9
        s, e = s[keep], e[keep]
        if p["merge_ms"] > 0 and s.size > 1:
            s, e = merge_events(t, xo, yo, get_ok(), s, e, p["merge_ms"] / 1000.0, p["merge_deg"] / deg_per_unit,
                                p["aspect"])
        return s, e


def trim_pso(t, x, y, ok, s, e, pso: int, p, max_gap: float):
    """`IVT`'s ``pso_ms`` step on the numpy path (the compiled loop does it as it closes a run): each event
    [s, e) whose previous sample is usable and at most ``max_gap`` before it starts ``pso`` samples later; what is
    left must hold at least one sample and pass the minimum count and duration again."""
    prev = np.maximum(s - 1, 0)
    with np.errstate(invalid="ignore"):
        after_fast = (s > 0) & ok[prev] & np.isfinite(x[prev]) & np.isfinite(y[prev]) & np.isfinite(t[prev]) & (
            t[s] - t[prev] <= max_gap)
    s2 = np.where(after_fast, s + pso, s)
    keep = (e - s2) >= max(1, int(p["min_samples"]))
    keep[keep] = (t[e[keep] - 1] - t[s2[keep]]) >= p["min_duration_ms"] / 1000.0 - 1e-9
    return s2[keep], e[keep]


def fill_gaps(t, x, y, ok, max_s: float):
    """Linear interpolation over runs of not-ok samples whose bordering ok samples are <= ``max_s`` apart
    (only interior runs; samples with a NaN time stay missing). Returns new x, y, ok (copies)."""
    bs, be = runs(~ok)
    inner = (bs > 0) & (be < t.size)
    bs, be = bs[inner], be[inner]
    if bs.size == 0:
        return x, y, ok
    short = (t[be] - t[bs - 1]) <= max_s + 1e-9
    bs, be = bs[short], be[short]
    if bs.size == 0:
        return x, y, ok
    x, y, ok = x.copy(), y.copy(), ok.copy()
    lens = be - bs
    idx = np.repeat(bs, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
    left, right = np.repeat(bs - 1, lens), np.repeat(be, lens)
    ti = t[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (ti - t[left]) / (t[right] - t[left])
    good = np.isfinite(f)
    idx, left, right, f = idx[good], left[good], right[good], f[good]
    x[idx] = x[left] + (x[right] - x[left]) * f
    y[idx] = y[left] + (y[right] - y[left]) * f
    ok[idx] = True
    return x, y, ok


def merge_events(t, x, y, ok, s, e, max_gap_s: float, max_dist: float, aspect: float = 1.0):
    """Join consecutive events [s, e) whose gap (t[s_next] - t[e_prev - 1]) is <= ``max_gap_s`` and whose
    centroids (ok samples) are <= ``max_dist`` apart (y scaled by ``aspect``). Chains merge transitively
    (each link is judged on the original events' centroids, as in Tobii's filter)."""

    tb = events_table(t, x, y, ok, s, e)
    cx, cy = tb["x"].to_numpy(), tb["y"].to_numpy()
    with np.errstate(invalid="ignore"):
        link = ((t[s[1:]] - t[e[:-1] - 1]) <= max_gap_s + 1e-9) & (
            np.hypot(np.diff(cx), np.diff(cy) * aspect) <= max_dist)
    first = np.concatenate(([True], ~link))
    last = np.concatenate((~link, [True]))
    return s[first], e[last]


class IVTFlow(IVT):
    """I-VT with head-motion compensation: the scene's global optic flow is subtracted from the gaze velocity.

    When the head turns, a gaze held on an object moves across the scene image with the whole scene; plain
    I-VT then sees velocity (and misses the fixation, or needs a high threshold). Here the scene video's
    global motion is estimated per frame pair (OpenCV Farneback dense flow on grey frames downscaled to
    ``flow_width`` px; the median flow vector, robust to hands and moving objects), integrated to a scene
    displacement S(t) (linear between frame times k / fps, the store's time origin being the video start),
    and the speed is computed on gaze - S(t): the gaze velocity relative to the scene. Everything else (and
    the centroids, on the raw gaze) is `IVT`. Parameters: IVT's, plus ``video_path`` (`run_fixations`
    fills it from the store's videos.path), ``video_fps`` (0: from the video, or the store's fps) and
    ``flow_width`` = 160. The flow of a video is computed once per process (cached by path, size, mtime).
    """

    defaults = {**IVT.defaults, "threshold_deg_s": 30.0, "video_path": "", "video_fps": 0.0, "flow_width": 160}
    fused = None  # the speed is taken on gaze - S(t): always the __call__ path

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):

        p = {**self.defaults, **params}
        if not p["video_path"]:
            raise StreamGazeError("ivt_flow needs the scene video: pass video_path (run_fixations reads it from the store)")
        video = Path(p["video_path"])
        if not video.is_file() or video.stat().st_size == 0:
            problem = "is a folder" if video.is_dir() else "is empty" if video.is_file() else "no such video file"
            raise InputError(video, f"{problem}; ivt_flow needs the scene video (the store's videos.path: re-ingest "
                                    "with --video, or pass video_path=...)")
        fps, dx, dy = scene_flow(p["video_path"], width=int(p["flow_width"]), fps=float(p["video_fps"]) or None)
        ft = np.arange(dx.size + 1) / fps
        sx = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dx))))
        sy = np.interp(t, ft, np.concatenate(([0.0], np.cumsum(dy))))
        return self._detect(t, x, y, ok, deg_per_unit, p, shift=(sx, sy))
