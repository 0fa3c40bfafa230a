"""Seeded randomness from a stable hash: the same question on every machine, process and PYTHONHASHSEED."""
from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

import numpy as np

from . import names

T = TypeVar("T")


def candidate_rng(global_seed: int, video_id: str, task_id: str, key: str) -> np.random.Generator:
    """One generator per candidate (tasks.md 1.4): a stable key, so a skip never shifts another's draws."""
    digest = hashlib.sha256(f"{global_seed}|{video_id}|{task_id}|{key}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


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
