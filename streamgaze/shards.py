"""Shards: one stage's work split across machines by video, the same split everywhere.

``--shard K/N`` (K from 1 to N) runs a stage (``objects``, ``generate``, ``eval``) on the videos of shard K only. A
video belongs to shard ``1 + (first 8 bytes of sha256(video id), big-endian) mod N``: a stable hash, the same on
every machine, process and Python version (never Python's ``hash()``, which is salted per process). Every stage is
per video (a video's questions depend only on its own timeline and seeds), so the shards of a run together hold
exactly what the unsharded run holds; ``streamgaze merge`` puts them back together.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


def shard_number(video_id: str, count: int) -> int:
    """The shard (1..count) that ``video_id`` belongs to."""
    digest = hashlib.sha256(str(video_id).encode("utf-8", "surrogatepass")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``3/8``: index 3, count 8; 1 <= index <= count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for name in ("index", "count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"shard {name} must be an integer, got {value!r}")
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"{self.index}/{self.count} is not a shard: K/N needs 1 <= K <= N")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"K/N"`` -> Shard; a ValueError saying what is wrong otherwise."""
        head, sep, tail = str(text).strip().partition("/")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise ValueError(f"{text!r} is not K/N (two whole numbers, e.g. 2/8)")
        return cls(int(head), int(tail))

    def holds(self, video_id: str) -> bool:
        """Is ``video_id`` one of this shard's videos?"""
        return shard_number(video_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(value) -> Shard | None:
    """A shard from a `Shard`, a ``"K/N"`` string or None (no sharding)."""
    if value is None or isinstance(value, Shard):
        return value
    return Shard.parse(value)


def meta_key(stage: str) -> str:
    """The store's ``meta`` key recording the last sharded run of ``stage`` (`record_shard`)."""
    return f"shard:{stage}"


def record_shard(con, stage: str, shard: Shard | None, **details) -> None:
    """Note in the store's ``meta`` table (inside the stage's transaction) that ``stage`` last ran as ``shard``, so
    `streamgaze merge` knows which store holds the stage's current rows of which video. An unsharded run removes
    the note: its rows cover every video."""
    key = meta_key(stage)
    con.execute("DELETE FROM meta WHERE key = ?", [key])
    if shard is not None:
        con.execute("INSERT INTO meta VALUES (?, ?)", [key, json.dumps({"shard": str(shard), **details}, sort_keys=True)])
