"""Per-recording checks (table ``recording_checks``): does the gaze fit the video it is paired with?

All measures are vectorised over the gaze samples (numpy):

- ``gaze_rate_hz``: 1 / median step between timestamps;
- ``coverage``: share of the video's frames that hold at least one valid gaze sample inside the video's time;
- ``invalid_share``: share of samples marked invalid (blink, lost track, low confidence, not worn);
- ``outside_share``: share of samples before 0 s or after the video's end;
- ``frames_per_sample``: video fps / gaze rate; ``rate_mismatch`` when the gaze is slower than the frames
  (the same sample is then reused over several frames).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from streamgaze.gaze.datasets.recipes import Recipe

#: Below this share of frames with gaze the recording is flagged ``low_coverage``.
MIN_COVERAGE = 0.8
#: Above this share of invalid samples the recording is flagged ``many_invalid``.
MAX_INVALID = 0.2
#: Above this share of samples outside the video's time the recording is flagged ``outside_video``.
MAX_OUTSIDE = 0.01
#: Gaze is "slower than frames" when its rate is below this fraction of the video's fps (rounding of rates).
RATE_TOLERANCE = 0.95

#: Between the warnings of one recording in ``recording_checks.warnings``.
WARNING_SEPARATOR = " | "

CHECK_COLUMNS = {
    "video_id": pa.string(), "dataset": pa.string(), "n_gaze": pa.int64(), "gaze_rate_hz": pa.float64(),
    "video_fps": pa.float64(), "video_duration_s": pa.float64(), "gaze_duration_s": pa.float64(),
    "coverage": pa.float64(), "invalid_share": pa.float64(), "outside_share": pa.float64(),
    "frames_per_sample": pa.float64(), "rate_mismatch": pa.bool_(), "warnings": pa.string(),
}


def measure(gaze: pa.Table | None, fps: float | None, duration_s: float | None, n_frames: int | None) -> dict:
    """The numbers of one recording (None where there is no gaze or no video)."""
    out = dict.fromkeys(("gaze_rate_hz", "gaze_duration_s", "coverage", "invalid_share", "outside_share",
                         "frames_per_sample", "rate_mismatch"))
    out.update(n_gaze=0, video_fps=fps, video_duration_s=duration_s)
    if gaze is None or gaze.num_rows == 0:
        return out
    t = np.asarray(gaze["t_s"].to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = np.asarray(gaze["valid"].to_numpy(zero_copy_only=False), dtype=bool)
    out["n_gaze"] = int(t.size)
    dt = np.diff(t)
    med = float(np.median(dt)) if dt.size else 0.0
    out["gaze_rate_hz"] = 1.0 / med if med > 0 else None
    out["gaze_duration_s"] = float(t[-1] - t[0])
    out["invalid_share"] = float(1.0 - valid.mean())
    if fps and duration_s:
        inside = (t >= 0) & (t < duration_s)
        out["outside_share"] = float(1.0 - inside.mean())
        frames = int(n_frames or round(duration_s * fps))
        if frames > 0:
            idx = np.floor(t[inside & valid] * fps).astype(np.int64)
            idx = idx[(idx >= 0) & (idx < frames)]
            seen = np.zeros(frames, dtype=bool)
            seen[idx] = True
            out["coverage"] = float(seen.mean())
        if out["gaze_rate_hz"]:
            out["frames_per_sample"] = fps / out["gaze_rate_hz"]
            out["rate_mismatch"] = bool(out["gaze_rate_hz"] < RATE_TOLERANCE * fps)
    return out


def conditions(m: dict) -> list[str]:
    """Which of the recipe's pitfall conditions the numbers meet."""
    fired = []
    if m.get("rate_mismatch"):
        fired.append("rate_mismatch")
    if m.get("coverage") is not None and m["coverage"] < MIN_COVERAGE:
        fired.append("low_coverage")
    if m.get("outside_share") is not None and m["outside_share"] > MAX_OUTSIDE:
        fired.append("outside_video")
    if m.get("invalid_share") is not None and m["invalid_share"] > MAX_INVALID:
        fired.append("many_invalid")
    return fired


def warnings_for(m: dict, recipe: Recipe, file_warnings: list[str]) -> list[str]:
    """Plain warnings for the checks that fired, then the recipe's own words for them, then file-name pitfalls."""
    text = {
        "rate_mismatch": lambda: (f"gaze at {m['gaze_rate_hz']:.1f} Hz is slower than the video's "
                                  f"{m['video_fps']:.1f} fps: each sample serves {m['frames_per_sample']:.1f} frames"),
        "low_coverage": lambda: f"gaze covers only {m['coverage']:.0%} of the video's frames",
        "outside_video": lambda: f"{m['outside_share']:.1%} of the gaze lies outside the video's time",
        "many_invalid": lambda: f"{m['invalid_share']:.0%} of the gaze samples are invalid",
    }
    fired = conditions(m)
    out = [text[c]() for c in fired]
    out += [p.warning for p in recipe.pitfalls if p.when in fired]
    expected = recipe.facts.gaze_rate_hz
    if expected and m.get("gaze_rate_hz") and abs(m["gaze_rate_hz"] - expected) > 0.1 * expected:
        out.append(f"gaze rate {m['gaze_rate_hz']:.1f} Hz, but the dataset documents {expected:g} Hz")
    return out + list(file_warnings)


def checks_table(video_id: str, dataset: str, m: dict, warnings: list[str]) -> pa.Table:
    row = {**m, "video_id": video_id, "dataset": dataset, "warnings": WARNING_SEPARATOR.join(warnings)}
    return pa.table({k: pa.array([row.get(k)], typ) for k, typ in CHECK_COLUMNS.items()})
