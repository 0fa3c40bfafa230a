"""Helpers the detectors share: the time gap that splits events, the median sample interval."""
from __future__ import annotations

import numpy as np


def max_gap_s(median_dt: float, p: dict) -> float:
    """Consecutive samples further apart than max(``max_gap_ms``, 2.5 x the median interval) split events."""
    return max(p["max_gap_ms"] / 1000.0, 2.5 * median_dt)


def median_dt(t: np.ndarray) -> float:
    """Median sample interval from at most ~65 k evenly spread intervals (a full median of 10^8 is slow)."""
    if t.size < 2:
        return 0.0
    step = max(1, (t.size - 1) // 65536)
    dt = t[step::step] - t[step - 1:-1:step] if step > 1 else np.diff(t)
    dt = dt[dt > 0]
    return float(np.median(dt)) if dt.size else 0.0
