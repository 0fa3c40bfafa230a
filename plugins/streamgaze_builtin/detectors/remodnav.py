"""Optional fixation detector ``remodnav``: REMoDNaV (Dar, Wagner & Hanke 2021; MIT licence) behind the extra
``pip install 'streamgaze[remodnav]'``.

REMoDNaV labels saccades, post-saccadic oscillations, fixations (``FIXA``) and smooth pursuit (``PURS``) with
adaptive, noise-dependent saccade thresholds. This adapter reports its FIXA and (with ``pursuit`` = true, the
default) PURS events as our events: "stable gaze" (for head-mounted video a gaze held on a point of a moving
scene is image-plane pursuit). The package is imported only when the detector runs; without it the detector
raises one `StreamGazeError` telling what to install (exit 2 on the command line).

What the adapter does around REMoDNaV (its ``EyegazeClassifier``, ``preproc`` then ``__call__``):

- **Units**: REMoDNaV multiplies coordinate distances by ``px2deg`` and nothing else depends on the unit, so
  x, y are passed in the caller's unit (pixels, or normalised coordinates) with ``px2deg = deg_per_unit``; y is
  first scaled by ``aspect`` (height / width, set by `run_fixations`) so that a unit means the same angle in x
  and y. Not-ok samples (NaN, ``valid`` false) are passed as NaN.
- **Constant rate**: REMoDNaV assumes one sample every 1 / ``sampling_rate`` s. When the finite time steps all
  lie within 5 % of their median (and ``sampling_rate`` is 0, i.e. taken from that median) the samples are used
  as they are. Otherwise (jittery clocks, dropped rows, a ``sampling_rate`` given that differs) the gaze is
  **resampled** to a uniform grid at the rate (linear interpolation between two ok samples at most
  2.5 median intervals apart, else NaN), and every input sample gets the event of its nearest grid point.
  ``resample`` = false instead rejects uneven timestamps with a one-line error. Times must not decrease.
- **NaN edges**: REMoDNaV's Savitzky-Golay filter fits the first and last window of samples and fails on a
  NaN there (and NaN dilation can reach the edges), so the recording is trimmed to start at the first run of
  finite samples long enough for the filter window plus the NaN dilation, and to end at the last such run.
  All-NaN input, or too little left for the filter (or for one ``min_fixation_duration``), gives no events.
- **Low rates**: REMoDNaV rejects a Savitzky-Golay window that is not an odd sample count above the polynomial
  order; the window (``savgol_length`` seconds) is rounded down to the nearest odd count >= 3 (and >
  ``savgol_polyord``), or smoothing is turned off when none fits (0.019 s at 30-120 Hz). The 4 Hz pursuit
  low-pass needs a rate above 8 Hz.
- **Output**: events ``[start, end)`` as input sample indices, split at not-ok samples (our contract: invalid
  samples split fixations) and pieces shorter than ``min_fixation_duration`` (and 2 samples) dropped; a FIXA
  next to a PURS stays two events. `streamgaze.gaze.fixations.detect` builds the table (times, centroids, counts).

Every REMoDNaV parameter is a parameter here, with REMoDNaV's default and unit (seconds, deg/s).
Speed: REMoDNaV loops over samples in Python (here ~3 s for the 67 k-sample 1000 Hz EDF, ~2 s for a 3-minute
120 Hz recording); fine for recordings, not for 10 M samples.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from streamgaze.plugins.api import StreamGazeError, runs

INSTALL_HINT = "pip install 'streamgaze[remodnav]'"

#: REMoDNaV's classifier and preprocessing parameters, with its defaults (seconds, deg/s, Hz).
CLASSIFIER_PARAMS = {
    "pursuit_velthresh": 2.0,
    "noise_factor": 5.0,
    "velthresh_startvelocity": 300.0,
    "min_intersaccade_duration": 0.04,
    "min_saccade_duration": 0.01,
    "max_initial_saccade_freq": 2.0,
    "saccade_context_window_length": 1.0,
    "max_pso_duration": 0.04,
    "min_fixation_duration": 0.04,
    "min_pursuit_duration": 0.04,
    "lowpass_cutoff_freq": 4.0,
}
PREPROC_PARAMS = {
    "min_blink_duration": 0.02,
    "dilate_nan": 0.01,
    "median_filter_length": 0.05,
    "savgol_length": 0.019,
    "savgol_polyord": 2,
    "max_vel": 1000.0,
}

STABLE = ("FIXA", "PURS")


def _import_remodnav():
    try:
        import remodnav  # noqa: F401
        from remodnav.clf import EyegazeClassifier
    except ImportError:
        raise StreamGazeError(f"detector 'remodnav' needs the optional package remodnav: {INSTALL_HINT}") from None
    return EyegazeClassifier


class Remodnav:
    """REMoDNaV as a detector plugin; see the module docstring for the conversions. Parameters: REMoDNaV's
    (`CLASSIFIER_PARAMS`, `PREPROC_PARAMS`, its defaults) plus ``sampling_rate`` (Hz; 0 = 1 / median interval),
    ``resample`` (true: resample uneven timestamps; false: reject them), ``pursuit`` (true: PURS events count
    as stable gaze too) and ``aspect`` (height / width for normalised coordinates)."""

    defaults = {
        **CLASSIFIER_PARAMS,
        **PREPROC_PARAMS,
        "sampling_rate": 0.0,
        "resample": True,
        "pursuit": True,
        "aspect": 1.0,
    }

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        p = {**self.defaults, **params}
        clf_cls = _import_remodnav()
        empty = np.zeros(0, np.int64)
        n = t.size
        fin = np.flatnonzero(np.isfinite(t))  # samples with a time; the rest are dropped (and split events)
        if fin.size < 3:
            return empty, empty
        tf = t[fin]
        steps = np.diff(tf)
        if (steps < 0).any():
            k = int(np.flatnonzero(steps < 0)[0])
            raise StreamGazeError(f"remodnav: timestamps must not decrease (sample {int(fin[k + 1])} at "
                                  f"{tf[k + 1]:g} s comes after {tf[k]:g} s)")
        pos = steps[steps > 0]
        if pos.size == 0:
            return empty, empty
        med = float(np.median(pos))
        fs = float(p["sampling_rate"]) or 1.0 / med
        even = bool(np.all(np.abs(steps - med) <= 0.05 * med)) and abs(fs * med - 1.0) <= 0.01
        if fs <= 2.0 * p["lowpass_cutoff_freq"]:
            raise StreamGazeError(f"remodnav: a sampling rate of {fs:g} Hz is too low for its "
                                  f"{p['lowpass_cutoff_freq']:g} Hz pursuit low-pass (needs > "
                                  f"{2 * p['lowpass_cutoff_freq']:g} Hz)")
        okf = ok[fin]
        xf = np.where(okf, x[fin], np.nan)
        yf = np.where(okf, y[fin] * float(p["aspect"]), np.nan)
        if even:
            gx, gy, grid_of = xf, yf, None
        elif not p["resample"]:
            bad = int(np.argmax(np.abs(steps - med) > 0.05 * med))
            raise StreamGazeError(
                f"remodnav needs a constant sampling rate; the interval after sample {int(fin[bad])} is "
                f"{steps[bad] * 1000:.3g} ms, the median {med * 1000:.3g} ms (set resample=true to resample)")
        else:
            gx, gy, grid_of = _resample(tf, xf, yf, fs, 2.5 * med)

        # savgol window in samples: an odd count >= 3 and > polyord (scipy's rule), else 0 (smoothing off)
        order = int(p["savgol_polyord"])
        win = int(p["savgol_length"] * fs)
        if win % 2 == 0:
            win -= 1
        if win < 3 or win <= order:
            win = 0
        dil = int(p["dilate_nan"] * fs)
        lo, hi = _trim(np.isfinite(gx) & np.isfinite(gy), max(win, 1) + dil + 1)
        min_fix = max(2, int(p["min_fixation_duration"] * fs))
        if hi - lo < max(win, min_fix, 3):
            return empty, empty
        data = np.rec.fromarrays([gx[lo:hi].copy(), gy[lo:hi].copy()], names=["x", "y"])
        kw = {k: float(p[k]) for k in CLASSIFIER_PARAMS}
        pre = {k: float(p[k]) for k in PREPROC_PARAMS if k not in ("savgol_length", "savgol_polyord")}
        log = logging.getLogger("remodnav")
        level = log.level
        log.setLevel(logging.ERROR)  # its per-sample velocity warnings would flood the terminal
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                clf = clf_cls(px2deg=float(deg_per_unit), sampling_rate=fs, **kw)
                pp = clf.preproc(data, savgol_length=(win + 0.5) / fs if win else 0.0, savgol_polyord=order, **pre)
                events = clf(pp, classify_isp=True, sort_events=True)
        except StreamGazeError:
            raise
        except Exception as exc:  # a failure inside the package: one line, not a traceback
            raise StreamGazeError(f"remodnav failed on this input ({type(exc).__name__}: {exc})") from None
        finally:
            log.setLevel(level)

        labels = STABLE if p["pursuit"] else STABLE[:1]
        ev = [(e["start_time"], e["end_time"]) for e in events if e["label"] in labels]
        if not ev:
            return empty, empty
        b = np.rint(np.asarray(ev, np.float64) * fs).astype(np.int64) + lo  # grid (or sample) indices
        gs, ge = b[:, 0], b[:, 1]
        if grid_of is None:
            fs_idx, fe_idx = gs, ge
        else:  # input samples whose nearest grid point lies in [gs, ge)
            fs_idx = np.searchsorted(grid_of, gs, side="left")
            fe_idx = np.searchsorted(grid_of, ge, side="left")
        keep = fe_idx > fs_idx
        s, e = fin[fs_idx[keep]], fin[fe_idx[keep] - 1] + 1  # back to indices of the input
        return _split_at_bad(t, ok, s, e, n, p["min_fixation_duration"], min_fix)


def _resample(t, x, y, fs: float, max_step: float):
    """x, y on the grid t[0] + k / fs (linear between two finite samples <= max_step apart, else NaN), and the
    nearest grid point of every sample (non-decreasing)."""
    m = int(np.floor((t[-1] - t[0]) * fs + 1e-9)) + 1
    tg = t[0] + np.arange(m) / fs
    j = np.clip(np.searchsorted(t, tg, side="right") - 1, 0, t.size - 1)
    j1 = np.minimum(j + 1, t.size - 1)
    step = t[j1] - t[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(step > 0, (tg - t[j]) / np.where(step > 0, step, 1.0), 0.0)
        gx = x[j] + w * (x[j1] - x[j])
        gy = y[j] + w * (y[j1] - y[j])
    exact = w == 0.0  # a grid point on a sample: that sample alone
    gx = np.where(exact, x[j], gx)
    gy = np.where(exact, y[j], gy)
    far = ~exact & ((step > max_step) | (step <= 0))
    gx[far] = np.nan
    gy[far] = np.nan
    grid_of = np.clip(np.rint((t - t[0]) * fs), 0, m - 1).astype(np.int64)
    return gx, gy, grid_of


def _trim(fin: np.ndarray, need: int) -> tuple[int, int]:
    """[lo, hi): from the first to the end of the last run of finite samples at least ``need`` long (shorter
    recordings: the one longest run). (0, 0) when nothing is finite."""
    s, e = runs(fin)
    if s.size == 0:
        return 0, 0
    long = np.flatnonzero(e - s >= need)
    if long.size == 0:
        k = int(np.argmax(e - s))
        return int(s[k]), int(e[k])
    return int(s[long[0]]), int(e[long[-1]])


def _split_at_bad(t, ok, s, e, n: int, min_dur_s: float, min_samples: int):
    """Events [s, e) cut at the not-ok samples; pieces with fewer than ``min_samples`` samples or lasting less
    than ``min_dur_s`` minus one interval are dropped. Vectorised: one label per sample, runs of a constant
    label."""
    lab = np.full(n + 1, -1, np.int64)
    cover = np.zeros(n + 1, np.int64)
    np.add.at(cover, s, 1)
    np.add.at(cover, e, -1)
    inside = np.cumsum(cover)[:n] > 0
    idx = np.searchsorted(s, np.arange(n), side="right") - 1
    lab[:n] = np.where(inside & ok, idx, -1)
    cut = np.flatnonzero(lab[1:] != lab[:-1]) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [n + 1]))
    real = lab[starts] >= 0
    ps, pe = starts[real], ends[real]
    with np.errstate(invalid="ignore"):
        dur = t[pe - 1] - t[ps]
        med = float(np.median(np.diff(t[np.isfinite(t)]))) if n > 1 else 0.0
        keep = ((pe - ps) >= min_samples) & (dur >= min_dur_s - med - 1e-9)
    return ps[keep].astype(np.int64), pe[keep].astype(np.int64)

