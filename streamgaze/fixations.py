"""Fixation detection and the dwell-episode builder.

Two levels (formats.md, "head-mounted gaze"):

1. **Oculomotor fixations** from a detector plugin (`detect`; built-in ``ivt``), the eye still for >= 60 ms.
   Detectors work in *gaze-in-scene-image* coordinates; no head-motion compensation.
2. **Dwell episodes** (`build_episodes`): consecutive fixations merged when their centres are < ``merge_px``
   (pixels of the video frame) apart and the gap between them is < ``merge_gap_s``; episodes lasting at least
   ``min_episode_s`` are kept. Defaults are the StreamGaze reference's (50 px, 2 s, 2.5 s). An optional
   scene-consistency filter (the reference's step 1.5) drops episodes whose sampled frames' HSV histograms
   disagree.

A detector plugin (hook ``streamgaze_fixation_detectors`` -> ``{name: Detector}``) is any object with a
``defaults`` dict (every parameter it accepts, with its default) and
``__call__(t_s, x, y, valid, *, deg_per_unit, **params) -> (start_idx, end_idx)``: integer arrays of events,
end exclusive, in time order, non-overlapping. `detect` computes times, centroids and sample counts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, StreamGazeError

#: Degrees per normalised unit assumed for normalised scene-camera coordinates when ``deg_per_unit`` is None:
#: the horizontal field of view of a Pupil Invisible / Ego4D scene camera (1088 px, ~82 deg; formats.md).
#: Vertical distances are scaled by ``aspect`` (height / width) so one degree is the same in x and y.
DEFAULT_DEG_PER_UNIT = 82.0

#: Episode-builder parameters and defaults (the StreamGaze reference's values).
EPISODE_DEFAULTS = {
    "merge_px": 90.0,  # neighbouring fixations closer than this (video pixels) belong to one dwell (ref: 50)
    "merge_gap_s": 2.0,  # ... when the gap between them is shorter than this
    "min_episode_s": 2.5,  # dwell episodes shorter than this are dropped
    "scene_check": False,  # reference's HSV-histogram scene-consistency filter (reads frames; off: see docs)
    "scene_min_corr": 0.9,  # each sampled frame's HSV histogram must correlate >= this with the first
    "scene_frames": 8,  # frames sampled per episode for the scene check
    "black_mean": 10.0,  # frames with mean intensity below this are "black" and ignored by the check
}


class Detector(Protocol):
    defaults: dict

    def __call__(self, t_s: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray, *, deg_per_unit: float, **params): ...


# ---------------------------------------------------------------------------------------------------------
# Shared numpy helpers (also used by detector plugins)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array (run-length encoding)."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = np.flatnonzero(m[1:] != m[:-1]) + 1  # one pass over bytes, no int8 copy
    up = d[m[d]]
    down = d[~m[d]]
    if m[0]:
        up = np.concatenate(([0], up))
    if m[-1]:
        down = np.concatenate((down, [m.size]))
    return up.astype(np.int64), down.astype(np.int64)


def speed(t: np.ndarray, x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-sample speed (units/s): central difference where both neighbours are usable, else one-sided.

    A neighbour is usable when it is ``ok`` and its time differs; samples with no usable neighbour get NaN.
    """
    n = t.size
    v = np.full(n, np.nan)
    if n < 2:
        return v
    with np.errstate(invalid="ignore", divide="ignore"):
        dt1 = np.diff(t)
        step_ok = ok[:-1] & ok[1:] & (dt1 > 0)
        fwd = np.where(step_ok, np.hypot(np.diff(x), np.diff(y)) / np.where(dt1 > 0, dt1, 1.0), np.nan)
        # fwd[i] is the speed between i and i+1
        v_fwd = np.concatenate((fwd, [np.nan]))  # sample i -> i+1
        v_bwd = np.concatenate(([np.nan], fwd))  # sample i-1 -> i
        if n >= 3:
            dt2 = t[2:] - t[:-2]
            c_ok = ok[2:] & ok[:-2] & ok[1:-1] & (dt2 > 0)
            cen = np.where(c_ok, np.hypot(x[2:] - x[:-2], y[2:] - y[:-2]) / np.where(dt2 > 0, dt2, 1.0), np.nan)
            v_cen = np.concatenate(([np.nan], cen, [np.nan]))
        else:
            v_cen = np.full(n, np.nan)
    v = np.where(np.isfinite(v_cen), v_cen, np.where(np.isfinite(v_fwd), v_fwd, v_bwd))
    v[~ok] = np.nan
    return v


#: Samples per chunk of the fused I-VT pass: ~7 float64 buffers of this size stay in L2 cache.
CHUNK = 1 << 14


def slow_mask(t, x, y, ok, threshold: float, *, aspect: float = 1.0, max_gap_s: float = np.inf):
    """I-VT core: ``speed < threshold`` per sample (same speed as `speed`), plus the time-gap positions.

    Cache-sized chunks and ``out=`` buffers, no square root or division: central difference
    (dx^2 + dy^2 < (threshold * dt)^2); samples next to an unusable one (the few where `speed` falls back to a
    one-sided difference) are recomputed with `speed`. Returns ``(slow, gaps)``: gaps are the i with
    t[i+1] - t[i] > max_gap_s.
    """
    n = t.size
    slow = np.zeros(n, bool)
    gaps = []
    if n < 3:
        if n:
            slow[:] = ok & (speed(t, x, y * aspect, ok) < threshold)
            gaps.append(np.flatnonzero(np.diff(t) > max_gap_s))
        return slow, np.concatenate(gaps) if gaps else np.zeros(0, np.int64)
    thr2 = float(threshold) ** 2
    a2 = float(aspect) ** 2
    bx, by, bt, bg = (np.empty(CHUNK) for _ in range(4))
    bm = np.empty(CHUNK, bool)
    for a in range(1, n - 1, CHUNK):
        b = min(a + CHUNK, n - 1)
        m = b - a
        dx, dy, dt, g, sm = bx[:m], by[:m], bt[:m], bg[:m], bm[:m]
        np.subtract(x[a + 1:b + 1], x[a - 1:b - 1], out=dx)
        np.multiply(dx, dx, out=dx)
        np.subtract(y[a + 1:b + 1], y[a - 1:b - 1], out=dy)
        np.multiply(dy, dy, out=dy)
        if a2 != 1.0:
            np.multiply(dy, a2, out=dy)
        np.add(dx, dy, out=dx)
        np.subtract(t[a + 1:b + 1], t[a:b], out=g)  # forward step, for gaps
        np.greater(g, max_gap_s, out=sm)
        if sm.any():
            gaps.append(np.flatnonzero(sm) + a)
        np.subtract(t[a + 1:b + 1], t[a - 1:b - 1], out=dt)
        np.multiply(dt, dt, out=dt)
        np.multiply(dt, thr2, out=dt)
        np.less(dx, dt, out=slow[a:b])
    if t[1] - t[0] > max_gap_s:
        gaps.insert(0, np.array([0]))
    slow &= ok
    # samples whose central difference is unusable: an unusable neighbour (or an end of the array)
    edge = np.zeros(n, bool)
    edge[0] = edge[-1] = True
    edge[1:-1] = ~(ok[:-2] & ok[2:])
    fix = np.flatnonzero(edge & ok)
    if fix.size:
        # speed on the small neighbourhoods only; samples joined across a hole never use a central step
        v = _local_speed(t, x, y * aspect if aspect != 1.0 else y, ok, fix)
        slow[fix] = v < threshold
    return slow, (np.concatenate(gaps) if gaps else np.zeros(0, np.int64))


def _local_speed(t, x, y, ok, idx):
    """`speed` at the samples ``idx`` (one-sided where the central difference is unusable), vectorised."""
    n = t.size
    nan = np.nan

    def step(i, j):
        good = (i >= 0) & (j < n)
        i2, j2 = np.clip(i, 0, n - 1), np.clip(j, 0, n - 1)
        dtt = t[j2] - t[i2]
        good &= ok[i2] & ok[j2] & (dtt > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(good, np.hypot(x[j2] - x[i2], y[j2] - y[i2]) / np.where(dtt > 0, dtt, 1.0), nan)

    cen = step(idx - 1, idx + 1)
    fwd = step(idx, idx + 1)
    bwd = step(idx - 1, idx)
    v = np.where(np.isfinite(cen), cen, np.where(np.isfinite(fwd), fwd, bwd))
    return np.where(ok[idx] & np.isfinite(v), v, np.inf)


# ---------------------------------------------------------------------------------------------------------
# Public API


def _as_arrays(t_s, x, y, valid):
    t = np.asarray(t_s, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if not (t.size == x.size == y.size):
        raise StreamGazeError(f"t_s, x and y must have the same length (got {t.size}, {x.size}, {y.size})")
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y)
    if valid is not None:
        v = np.asarray(valid, dtype=bool).ravel()
        if v.size != t.size:
            raise StreamGazeError(f"valid must have the same length as t_s (got {v.size}, {t.size})")
        ok &= v
    return t, x, y, ok


def get_detector(name: str):
    from .plugins import lookup

    return lookup("fixation_detectors", name).obj


def check_params(where: str, params: dict, allowed: dict) -> dict:
    """Reject unknown names (InputError naming the param) and values of the wrong kind."""
    out = {}
    for k, v in params.items():
        if k not in allowed:
            raise InputError(where, f"unknown parameter; known: {', '.join(sorted(allowed))}", column=k)
        d = allowed[k]
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise InputError(where, f"expected true or false, got {v!r}", column=k)
        elif isinstance(d, (int, float)) or d is None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise InputError(where, f"expected a number, got {v!r}", column=k)
            if isinstance(d, int) and not isinstance(d, bool) and float(v) != int(v):
                raise InputError(where, f"expected an integer, got {v!r}", column=k)
            if v < 0:
                raise InputError(where, f"must not be negative, got {v!r}", column=k)
        out[k] = v
    return out


def detect(t_s, x, y, valid=None, *, detector: str = "ivt", deg_per_unit: float | None = None, **params) -> pa.Table:
    """Detect fixations with a registered detector plugin; one row per fixation.

    ``x, y`` are normalised scene-camera coordinates (then ``deg_per_unit`` defaults to
    `DEFAULT_DEG_PER_UNIT`, 82 deg per frame width) or pixels (then pass ``deg_per_unit`` = degrees per pixel).
    Samples that are NaN or ``valid == False`` split fixations. Returns a ``pyarrow.Table`` with ``start_idx,
    end_idx`` (end exclusive), ``t_start`` (first sample's time), ``t_end`` (last sample's time), ``x, y``
    (centroid), ``n_samples``, ``duration_s``.
    """
    det = get_detector(detector)
    params = check_params("detect()", params, getattr(det, "defaults", {}))
    t, xx, yy, ok = _as_arrays(t_s, x, y, valid)
    if deg_per_unit is None:
        finite = np.abs(np.concatenate((xx[ok], yy[ok])))
        if finite.size and np.nanmax(finite) > 2.0:
            raise StreamGazeError("x, y look like pixels (values > 2): pass deg_per_unit (degrees per pixel)")
        deg_per_unit = DEFAULT_DEG_PER_UNIT
    if t.size == 0 or not ok.any():
        s = e = np.zeros(0, np.int64)
    else:
        s, e = det(t, xx, yy, ok, deg_per_unit=float(deg_per_unit), **params)
        s, e = np.asarray(s, np.int64), np.asarray(e, np.int64)
    return events_table(t, xx, yy, ok, s, e)


def events_table(t, x, y, ok, s: np.ndarray, e: np.ndarray) -> pa.Table:
    """Times, centroids of the ok samples, and counts of events [s, e): one ``np.add.reduceat`` per column
    over the interleaved bounds (no cumulative sum over the whole recording)."""
    if s.size:
        bounds = np.empty(2 * s.size, np.int64)
        bounds[0::2], bounds[1::2] = s, e
        pad = np.concatenate  # reduceat needs indices < len: append one zero element
        lo, hi = int(s[0]), int(e[-1])
        okl = ok[lo:hi]
        b = bounds - lo
        seg_ok = pad((okl, [False]))
        n = np.add.reduceat(seg_ok.astype(np.int64), b)[0::2].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx = np.add.reduceat(pad((np.where(okl, x[lo:hi], 0.0), [0.0])), b)[0::2] / n
            my = np.add.reduceat(pad((np.where(okl, y[lo:hi], 0.0), [0.0])), b)[0::2] / n
        t0, t1 = t[s], t[e - 1]
    else:
        n = mx = my = t0 = t1 = np.zeros(0)
    return pa.table(
        {
            "start_idx": pa.array(s, pa.int64()),
            "end_idx": pa.array(e, pa.int64()),
            "t_start": pa.array(t0, pa.float64()),
            "t_end": pa.array(t1, pa.float64()),
            "x": pa.array(mx, pa.float64()),
            "y": pa.array(my, pa.float64()),
            "n_samples": pa.array(n.astype(np.int64), pa.int64()),
            "duration_s": pa.array(t1 - t0, pa.float64()),
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Episode builder


def build_episodes(
    fixations: pa.Table,
    *,
    width: int | None = None,
    height: int | None = None,
    merge_px: float = EPISODE_DEFAULTS["merge_px"],
    merge_gap_s: float = EPISODE_DEFAULTS["merge_gap_s"],
    min_episode_s: float = EPISODE_DEFAULTS["min_episode_s"],
    scene_check: bool = EPISODE_DEFAULTS["scene_check"],
    scene_min_corr: float = EPISODE_DEFAULTS["scene_min_corr"],
    scene_frames: int = EPISODE_DEFAULTS["scene_frames"],
    black_mean: float = EPISODE_DEFAULTS["black_mean"],
    video_path: str | Path | None = None,
    fps: float | None = None,
) -> pa.Table:
    """Merge consecutive fixations into dwell episodes; returns ``episode_id, t_start, t_end, x, y, n_fixations``.

    Two neighbouring fixations (in time order) join when the distance between their centres, in pixels of a
    ``width`` x ``height`` frame, is < ``merge_px`` and the gap (next t_start - previous t_end) is
    < ``merge_gap_s``. Without a frame size, 640 x 640 is assumed (StreamGaze's videos are 640 px wide).
    An episode's centre is the sample-weighted mean of its fixations' centres. Episodes lasting
    >= ``min_episode_s`` are kept, numbered ``e1, e2, ...`` in time order; they never overlap.
    ``scene_check`` (needs ``video_path`` and ``fps``) applies `scene_consistent` to every kept episode.
    """
    f = fixations.sort_by("t_start") if fixations.num_rows else fixations
    t0 = np.asarray(f["t_start"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    t1 = np.asarray(f["t_end"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    x = np.asarray(f["x"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    y = np.asarray(f["y"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    w = np.asarray(f["n_samples"].to_numpy(), dtype=np.float64) if f.num_rows else np.zeros(0)
    W = float(width) if width else 640.0
    H = float(height) if (width and height) else W
    if t0.size:
        link = (np.hypot(np.diff(x) * W, np.diff(y) * H) < merge_px) & ((t0[1:] - t1[:-1]) < merge_gap_s)
        group = np.concatenate(([0], np.cumsum(~link)))
        starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        ends = np.concatenate((starts[1:], [t0.size]))
        ws = np.add.reduceat(w, starts)
        ex = np.add.reduceat(w * x, starts) / np.where(ws > 0, ws, 1)
        ey = np.add.reduceat(w * y, starts) / np.where(ws > 0, ws, 1)
        et0 = t0[starts]
        et1 = np.maximum.reduceat(t1, starts)
        nf = ends - starts
        keep = (et1 - et0) >= min_episode_s - 1e-9
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    else:
        et0 = et1 = ex = ey = np.zeros(0)
        nf = np.zeros(0, np.int64)
    if scene_check and et0.size:
        if video_path is None or not fps:
            raise StreamGazeError("scene_check needs the video (path and fps) in the videos table")
        keep = np.array(
            [scene_consistent(video_path, fps, a, b, n_frames=int(scene_frames), min_corr=scene_min_corr,
                              black_mean=black_mean) for a, b in zip(et0, et1)],
            dtype=bool,
        )
        et0, et1, ex, ey, nf = et0[keep], et1[keep], ex[keep], ey[keep], nf[keep]
    return pa.table(
        {
            "episode_id": pa.array([f"e{i + 1}" for i in range(et0.size)], pa.string()),
            "t_start": pa.array(et0, pa.float64()),
            "t_end": pa.array(et1, pa.float64()),
            "x": pa.array(ex, pa.float64()),
            "y": pa.array(ey, pa.float64()),
            "n_fixations": pa.array(np.asarray(nf, np.int64), pa.int64()),
        }
    )


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

    from .video import read_frames_at

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
# Pipeline stage


def run_fixations(store_path: str | Path, detector: str = "ivt", params: dict | None = None) -> str:
    """Per video in the store: read gaze (ORDER BY t_s), detect fixations, build episodes, write both tables.

    ``params`` mixes detector parameters and episode-builder parameters (`EPISODE_DEFAULTS`); an unknown
    name is an `InputError`. Also clears the ``objects`` rows of the processed videos (their episode ids
    no longer hold). All videos are written in one transaction.
    """
    from .progress import stage
    from .store import open_store

    params = dict(params or {})
    det = get_detector(detector)
    det_defaults = dict(getattr(det, "defaults", {}))
    allowed = {**det_defaults, **EPISODE_DEFAULTS, "deg_per_unit": None}
    params = check_params("--param", params, allowed)
    ep_params = {k: v for k, v in params.items() if k in EPISODE_DEFAULTS}
    det_params = {k: v for k, v in params.items() if k in det_defaults}
    store_path = Path(store_path)
    if not store_path.exists():
        raise InputError(store_path, "no such store file")

    results = {}
    with open_store(store_path) as store:
        vids = [r[0] for r in store.con.execute("SELECT DISTINCT video_id FROM gaze ORDER BY video_id").fetchall()]
        if not vids:
            raise InputError(store_path, "no gaze in the store; run `streamgaze ingest` first")
        meta = {r["video_id"]: r for r in store.rows("SELECT video_id, path, fps, width, height FROM videos")}
        with stage("fixations", total=len(vids)) as advance:
            for vid in vids:
                g = _arrow(store, "SELECT t_s, x, y, valid FROM gaze WHERE video_id = ? ORDER BY t_s", [vid])
                m = meta.get(vid, {})
                W, H = m.get("width"), m.get("height")
                kw = dict(det_params)
                if "aspect" in det_defaults and "aspect" not in kw and W and H:
                    kw["aspect"] = H / W
                fx = detect(
                    g["t_s"].to_numpy(), _f(g["x"]), _f(g["y"]),
                    g["valid"].fill_null(False).to_numpy(zero_copy_only=False),
                    detector=detector, deg_per_unit=params.get("deg_per_unit"), **kw,
                )
                eps = build_episodes(fx, width=W, height=H, video_path=m.get("path"), fps=m.get("fps"), **ep_params)
                results[vid] = (fx, eps)
                advance(1)
        with store.transaction():
            for vid, (fx, eps) in results.items():
                n = fx.num_rows
                fix_rows = pa.table(
                    {
                        "video_id": pa.array([vid] * n, pa.string()),
                        "fixation_id": pa.array(np.arange(1, n + 1), pa.int32()),
                        "t_start": fx["t_start"], "t_end": fx["t_end"], "x": fx["x"], "y": fx["y"],
                        "n_samples": pc.cast(fx["n_samples"], pa.int32()),
                        "detector": pa.array([detector] * n, pa.string()),
                    }
                )
                ep_rows = eps.add_column(0, "video_id", pa.array([vid] * eps.num_rows, pa.string()))
                store.replace_video_rows("fixations", [vid], fix_rows)
                store.replace_video_rows("episodes", [vid], ep_rows)
                store.con.execute("DELETE FROM objects WHERE video_id = ?", [vid])
    n_fix = sum(fx.num_rows for fx, _ in results.values())
    n_ep = sum(e.num_rows for _, e in results.values())
    return f"fixations ({detector}): {n_fix} fixations, {n_ep} episodes over {len(results)} video(s)"


def _arrow(store, sql: str, params: list) -> pa.Table:
    rel = store.con.sql(sql, params=params)
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb >= 1.4 name first
    return fetch()


def _f(col) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
