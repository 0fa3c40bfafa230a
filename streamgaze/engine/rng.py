"""Seeded randomness from a stable hash: the same question on every machine, process and PYTHONHASHSEED."""
from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

import numpy as np

from . import names

T = TypeVar("T")


def candidate_seed(global_seed: int, video_id: str, task_id: str, key: str) -> int:
    """s of tasks.md 1.4: the first 8 bytes (big-endian) of sha256("{global_seed}|{video_id}|{task_id}|{key}")."""
    digest = hashlib.sha256(f"{global_seed}|{video_id}|{task_id}|{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def candidate_rng(global_seed: int, video_id: str, task_id: str, key: str) -> np.random.Generator:
    """One generator per candidate (tasks.md 1.4): a stable key, so a skip never shifts another's draws."""
    return seeded(candidate_seed(global_seed, video_id, task_id, key))


def seeded(seed: int) -> np.random.Generator:
    """Exactly ``numpy.random.default_rng(seed)`` for 0 <= seed < 2**64, made in about half the time: numpy turns
    an int seed into little-endian 32-bit words in Python; handing it the words skips that (a test compares)."""
    words = [seed & 0xFFFFFFFF] if seed < 1 << 32 else [seed & 0xFFFFFFFF, seed >> 32]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(np.array(words, dtype=np.uint32))))


class LazyRng:
    """A candidate's generator, made on first use: most skipped candidates never draw, and making one costs
    more than most of their checks. Draws are exactly those of `candidate_rng`."""

    def __init__(self, seed: int):
        self._seed, self._rng = seed, None

    def __getattr__(self, name):  # only reached before the first draw, or for a method not bound below
        if self._rng is None:
            self._rng = seeded(self._seed)
            for method in ("integers", "permutation", "choice", "random"):
                setattr(self, method, getattr(self._rng, method))
        return getattr(self._rng, name)


def choice(rng: np.random.Generator, pool, kind: names.Kind = "object"):
    """Sort the pool by key, then take the item at ``rng.integers(len)``."""
    ordered = names.sorted_by_key(pool, kind)
    if not ordered:
        raise ValueError("choice from an empty pool")
    return ordered[int(rng.integers(len(ordered)))]


def sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    """``k`` items without replacement, returned in their original order (callers pass sorted lists)."""
    if k >= len(items):
        return list(items)
    picked = sorted(int(i) for i in rng.choice(len(items), size=k, replace=False))
    return [items[i] for i in picked]
