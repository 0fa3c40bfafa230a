"""Thread settings and the split of a sample range into parts, for the chunked numpy passes and the compiled
I-VT loop.

The settings are read at call time from this module (`THREADS`, `COMPILED_THREADS`, `PARALLEL_MIN`): set them
here, not on the package that re-exports the functions.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Threads for the chunked numpy passes (numpy releases the GIL inside each chunk's ufunc loops); inputs shorter
#: than `PARALLEL_MIN` run in the calling thread. Default 1 (no gain measured on a shared 2-core machine: the
#: passes wait on memory). ``STREAMGAZE_THREADS=N`` sets this and `COMPILED_THREADS`.
_THREADS_SET = int(os.environ.get("STREAMGAZE_THREADS", "0") or 0)
THREADS = max(1, _THREADS_SET or 1)
#: Threads for the compiled I-VT loop (`compiled_ivt`), which is compute-bound: one per core by default, at most
#: 8 (1.7x wall on 2 cores, docs/gaze.md).
COMPILED_THREADS = max(1, _THREADS_SET or min(os.cpu_count() or 1, 8))


def compiled_threads() -> int:
    """Threads the compiled loop uses now (read at call time, so a caller that changes `COMPILED_THREADS` is heard)."""
    return COMPILED_THREADS


PARALLEL_MIN = 1 << 20
_POOL = None


def parallel_ranges(fn, lo: int, hi: int, *, min_size: int | None = None, threads: int | None = None) -> list:
    """``[fn(a, b) for (a, b) in a split of [lo, hi)]``, one piece per thread (``threads``, default `THREADS`;
    results in order); inputs shorter than ``min_size`` (default `PARALLEL_MIN`) in one piece."""
    global _POOL
    want = THREADS if threads is None else threads
    k = want if hi - lo >= (PARALLEL_MIN if min_size is None else min_size) else 1
    if k == 1:
        return [fn(lo, hi)]
    cuts = _part_cuts(hi, lo, k)
    if _POOL is None or _POOL._max_workers < k:
        _POOL = ThreadPoolExecutor(k, thread_name_prefix="streamgaze")
    futs = [_POOL.submit(fn, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    return [f.result() for f in futs]


def _part_cuts(hi: int, lo: int = 0, k: int | None = None) -> list:
    """Where `parallel_ranges` splits [lo, hi) (k pieces; default: as many as it will use)."""
    if k is None:
        k = THREADS if hi - lo >= PARALLEL_MIN else 1
    return np.linspace(lo, hi, k + 1).astype(np.int64).tolist()
