"""Seeded randomness from a stable hash: the same question on every machine, process and PYTHONHASHSEED."""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from streamgaze.tasks import names

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


# numpy.random.SeedSequence's constants (numpy/random/bit_generator.pyx; its algorithm is fixed by numpy's policy).
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _MASK32 = 0xCA01F9DD, 0x4973F715, 16, 0xFFFFFFFF


def seed_words(seeds: Sequence[int]) -> np.ndarray:
    """``numpy.random.SeedSequence(s).generate_state(4, numpy.uint64)`` for many seeds 0 <= s < 2**64 at once: the
    words PCG64 is seeded with. numpy hashes one seed at a time in Python-level steps that cost more than a draw;
    here each step covers every seed. (A seed below 2**32 is one 32-bit entropy word, and SeedSequence pads with
    zero words: the same as a zero high word.) A test compares with numpy."""
    u = np.uint64
    mask = u(_MASK32)
    seeds_ = np.array(seeds, dtype=np.uint64).reshape(-1)
    hash_const = _INIT_A

    def hashmix(value):
        nonlocal hash_const
        value = value ^ u(hash_const)
        hash_const = (hash_const * _MULT_A) & _MASK32
        value = (value * u(hash_const)) & mask  # both factors < 2**32: exact in 64 bits
        return value ^ (value >> u(_XSHIFT))

    def mix(x, y):
        result = (u(_MIX_MULT_L) * x - u(_MIX_MULT_R) * y) & mask  # wraps mod 2**64, so right mod 2**32
        return result ^ (result >> u(_XSHIFT))

    zero = np.zeros_like(seeds_)
    pool = [hashmix(seeds_ & mask), hashmix(seeds_ >> u(32)), hashmix(zero), hashmix(zero)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    hash_const, state = _INIT_B, []
    for i in range(8):  # generate_state: 8 words of 32 bits, paired little-endian into 4 of 64
        value = pool[i % 4] ^ u(hash_const)
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = (value * u(hash_const)) & mask
        state.append(value ^ (value >> u(_XSHIFT)))
    return np.stack([state[2 * k] | (state[2 * k + 1] << u(32)) for k in range(4)], axis=1)


class _MadeSeedSequence(ISeedSequence):
    """A SeedSequence whose state words are already made (`seed_words`): what PCG64 asks one for."""

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 4 or np.dtype(dtype) != np.uint64:  # PCG64's one request
            raise ValueError("only PCG64's 4 uint64 words were made")
        return self.words


class CandidateRngs:
    """The generators of many candidates of one video (``(task_id, key)`` each), their seeds hashed together
    (`seed_words`) on the first draw of any: per candidate, numpy's seeding cost more than its draws. Each is
    exactly `candidate_rng` of its candidate (one not listed gets just that)."""

    def __init__(self, global_seed: int, video_id: str, candidates: Iterable[tuple[str, str]]):
        self.global_seed, self.video_id = global_seed, video_id
        self._row = {c: i for i, c in enumerate(candidates)}
        self._words: np.ndarray | None = None

    def generator(self, task_id: str, key: str) -> np.random.Generator:
        row = self._row.get((task_id, key))
        if row is None:
            return candidate_rng(self.global_seed, self.video_id, task_id, key)
        if self._words is None:
            self._words = seed_words([candidate_seed(self.global_seed, self.video_id, t, k) for t, k in self._row])
        return np.random.Generator(np.random.PCG64(_MadeSeedSequence(self._words[row])))


class LazyRng:
    """A candidate's generator, made by ``make`` on first use: most skipped candidates never draw, and making one
    costs more than most of their checks."""

    def __init__(self, make: Callable[[], np.random.Generator]):
        self._make, self._rng = make, None

    def __getattr__(self, name):  # only reached before the first draw, or for a method not bound below
        if self._rng is None:
            self._rng = self._make()
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
