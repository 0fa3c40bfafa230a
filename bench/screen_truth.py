"""Synthetic 500 Hz screen recordings with a per-sample truth, for `bench_detect_screen.py` (a bench helper).

Three kinds, after the Lund 2013 categories: ``images`` (fixations and saccades), ``dots`` (a target moving
at 5-25 deg/s followed by pursuit with catch-up saccades, between fixations) and ``video`` (a mix). The
oculomotor model, from textbook figures: saccade duration 2.2 ms/deg x amplitude + 21 ms with a minimum-jerk
position profile; a post-saccadic oscillation (PSO) after each saccade (a damped 22 Hz oscillation of 5-12 %
of the amplitude, at most 1 deg, labelled ``pso`` for 24 ms); fixational drift (a random walk of ~0.3 deg/s);
occasional blinks (lost samples, ``blink``); white measurement noise of 0.02-0.05 deg RMS (an SMI Hi-Speed or
EyeLink in a chin rest). Not human coding: a check that a detector handles pursuit and PSO as coders do.
"""
from __future__ import annotations

import numpy as np

LABELS = ("fixation", "saccade", "pso", "pursuit", "blink")


def _saccade(rng, start, target, hz):
    amp = float(np.hypot(*(target - start)))
    dur = (2.2 * amp + 21.0) / 1000.0
    n = max(2, int(round(dur * hz)))
    s = np.arange(1, n + 1) / n
    shape = 10 * s**3 - 15 * s**4 + 6 * s**5
    return start + (target - start) * shape[:, None], amp


def _pso(rng, target, direction, amp, hz):
    n = int(round(0.024 * hz))
    tt = np.arange(n) / hz
    a = min(1.0, amp * rng.uniform(0.05, 0.12))
    osc = a * np.exp(-tt / 0.010) * np.cos(2 * np.pi * 22.0 * tt)
    return target + osc[:, None] * direction


def screen_recording(kind: str, seconds: float, seed: int, hz: float = 500.0):
    """``(t, x_deg, y_deg, valid, label)``: positions in degrees on a 40 x 30 deg screen; label indexes `LABELS`."""
    rng = np.random.default_rng(seed)
    xs, ys, labs = [], [], []
    pos = np.array([20.0, 15.0])
    n_total = int(seconds * hz)
    noise_sd = rng.uniform(0.02, 0.05)
    count = 0
    while count < n_total:
        mode = kind if kind != "video" else rng.choice(["images", "dots"], p=[0.6, 0.4])
        # a fixation
        n = int(rng.uniform(0.15, 0.6) * hz)
        drift = np.cumsum(rng.normal(0, 0.3 / np.sqrt(hz), (n, 2)), axis=0)
        seg = pos + drift
        xs.append(seg), labs.append(np.full(n, 0))
        pos = seg[-1]
        count += n
        if rng.random() < 0.04:  # a blink
            n = int(rng.uniform(0.1, 0.2) * hz)
            xs.append(np.full((n, 2), np.nan)), labs.append(np.full(n, 4))
            count += n
        # a saccade to a new place, then its PSO
        target = np.clip(pos + rng.normal(0, 6, 2), [2, 2], [38, 28])
        if np.hypot(*(target - pos)) < 0.8:
            target = pos + [1.0, 0.0]
        path, amp = _saccade(rng, pos, target, hz)
        direction = (target - pos) / max(amp, 1e-9)
        xs.append(path), labs.append(np.full(len(path), 1))
        p = _pso(rng, target, direction, amp, hz)
        xs.append(p), labs.append(np.full(len(p), 2))
        pos = target
        count += len(path) + len(p)
        if mode == "dots":  # pursuit of a moving target, with a catch-up saccade now and then
            speed = rng.uniform(5, 25)
            ang = rng.uniform(0, 2 * np.pi)
            v = speed * np.array([np.cos(ang), np.sin(ang)])
            left = rng.uniform(0.5, 1.5)
            while left > 0:
                dur = min(left, rng.uniform(0.25, 0.6))
                n = max(1, int(dur * hz))
                gain = rng.uniform(0.85, 1.0)
                seg = pos + np.outer(np.arange(1, n + 1) / hz, v * gain)
                seg += np.cumsum(rng.normal(0, 0.2 / np.sqrt(hz), (n, 2)), axis=0)
                xs.append(seg), labs.append(np.full(n, 3))
                pos = seg[-1]
                count += n
                left -= dur
                if left > 0:  # catch-up saccade of the lag, 1-3 deg along the motion
                    target = pos + v / speed * rng.uniform(1, 3)
                    path, amp = _saccade(rng, pos, target, hz)
                    xs.append(path), labs.append(np.full(len(path), 1))
                    p = _pso(rng, target, v / speed, amp, hz)
                    xs.append(p), labs.append(np.full(len(p), 2))
                    pos = target
                    count += len(path) + len(p)
            pos = np.clip(pos, [2, 2], [38, 28])
    xy = np.concatenate(xs)[:n_total]
    label = np.concatenate(labs)[:n_total]
    valid = np.isfinite(xy[:, 0])
    xy = xy + rng.normal(0, noise_sd, xy.shape)
    t = np.arange(len(label)) / hz
    return t, xy[:, 0], xy[:, 1], valid, label
