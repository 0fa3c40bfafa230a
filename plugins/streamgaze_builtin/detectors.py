"""Built-in fixation detectors (``streamgaze fixations --detector NAME``, `streamgaze.fixations.detect`)."""
from __future__ import annotations

import numpy as np

from streamgaze import hookimpl
from streamgaze.fixations import runs, speed


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
    - ``max_gap_ms`` = 100: consecutive samples further apart than max(this, 2.5 x median dt) split a fixation
      (missing rows, e.g. dropped frames, are treated as missing data).
    - ``aspect`` = 1.0: height/width of the frame, so normalised y distances are scaled to x's degrees
      (`run_fixations` sets it from the video).
    """

    defaults = {
        "threshold_deg_s": 40.0,
        "threshold_units_s": None,
        "min_duration_ms": 60.0,
        "min_samples": 3,
        "max_gap_ms": 100.0,
        "aspect": 1.0,
    }

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        v = speed(t, x, y * p["aspect"], ok)
        if p["threshold_units_s"] is not None:
            slow = v < float(p["threshold_units_s"])
        else:
            slow = v * deg_per_unit < float(p["threshold_deg_s"])
        slow &= ok  # NaN speed compares False already
        if t.size >= 2:
            dt = np.diff(t)
            pos = dt[dt > 0]
            med = float(np.median(pos)) if pos.size else 0.0
            gap = np.flatnonzero(dt > max(p["max_gap_ms"] / 1000.0, 2.5 * med))
        else:
            gap = np.zeros(0, np.int64)
        s, e = runs(slow)
        if gap.size and s.size:
            # split runs at time gaps: a gap after sample g ends the run at g+1 and starts a new one there
            cut = gap + 1
            inside = cut[(slow[cut - 1]) & (slow[cut] if cut.size else False)]
            if inside.size:
                s = np.sort(np.concatenate((s, inside)))
                e = np.sort(np.concatenate((e, inside)))
        if s.size == 0:
            return s, e
        dur = t[e - 1] - t[s]
        keep = ((e - s) >= int(p["min_samples"])) & (dur >= p["min_duration_ms"] / 1000.0 - 1e-9)
        return s[keep], e[keep]


@hookimpl
def streamgaze_fixation_detectors():
    return {"ivt": IVT()}
