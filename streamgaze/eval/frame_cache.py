"""The persistent frame cache: every JPEG frame the eval sends, kept on disk so that a second model, gaze mode or
rerun on the same questions decodes nothing again.

An entry is keyed by the video file's identity (its size and a hash of its first and last MiB, so a copy or a move
of the file still hits and an edited file never does), the frame index, the output size and JPEG quality, the
overlay (none, drawn from a given gaze track, or already in the video) and the OpenCV version (the JPEG encoder).
Each file holds a digest of its JPEG: a corrupt or truncated entry is ignored and written again. The folder is
bounded (`DEFAULT_MAX_BYTES`); when it grows past the bound the least recently used entries go (a hit touches
its file's mtime). Writes go through a temporary file and a rename, so concurrent runs can share the folder.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"SGFC1"
DIGEST = 16
FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 2 * 1024**3
ENV_DIR = "STREAMGAZE_FRAME_CACHE_DIR"
SUFFIX = ".jpgc"
HEAD_BYTES = 1 << 20


def default_dir() -> Path:
    """``$STREAMGAZE_FRAME_CACHE_DIR``, else the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``,
    ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows) ``/streamgaze/frames``."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "streamgaze" / "frames"


def video_identity(path: Path) -> str:
    """The video file's identity: its size and a hash of its first and last MiB."""
    size = os.path.getsize(path)
    h = hashlib.sha256(f"{size}|".encode())
    with open(path, "rb") as fh:
        h.update(fh.read(HEAD_BYTES))
        if size > 2 * HEAD_BYTES:
            fh.seek(size - HEAD_BYTES)
        h.update(fh.read(HEAD_BYTES))
    return h.hexdigest()[:32]


@dataclass
class FrameCounts:
    """Frames of one run: ``decoded`` from the video, ``cached`` served from a cache (memory or disk)."""

    decoded: int = 0
    cached: int = 0

    def as_dict(self) -> dict:
        return {"decoded": self.decoded, "cached": self.cached}


class FrameCache:
    """JPEG frames on disk under ``root``, at most about ``max_bytes`` (least recently used out)."""

    def __init__(self, root: Path | str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._size: int | None = None  # bytes in the folder, counted on the first write
        self.rewritten = 0  # corrupt entries found (and written again)
        self._root = str(self.root)
        self._dirs: set[str] = set()  # sub-folders known to exist

    def key(self, identity: str, idx: int, variant: str) -> str:
        import cv2

        text = f"{FORMAT_VERSION}|{identity}|{int(idx)}|{variant}|{cv2.__version__}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / (key + SUFFIX)

    def get(self, key: str) -> bytes | None:
        """The JPEG of ``key``, or None (absent or corrupt); a hit marks the entry as recently used."""
        p = os.path.join(self._root, key[:2], key + SUFFIX)
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        head = len(MAGIC) + DIGEST
        if len(data) <= head or data[: len(MAGIC)] != MAGIC:
            self.rewritten += 1
            return None
        jpeg = data[head:]
        if hashlib.blake2b(jpeg, digest_size=DIGEST).digest() != data[len(MAGIC):head]:
            self.rewritten += 1
            return None
        try:
            os.utime(p)
        except OSError:
            pass
        return jpeg

    def put(self, key: str, jpeg: bytes) -> None:
        data = MAGIC + hashlib.blake2b(jpeg, digest_size=DIGEST).digest() + jpeg
        sub = os.path.join(self._root, key[:2])
        path = os.path.join(sub, key + SUFFIX)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:  # plain os calls: pathlib and makedirs on every write cost more than the write itself
            if sub not in self._dirs:
                os.makedirs(sub, exist_ok=True)
                self._dirs.add(sub)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError:
            self._dirs.discard(sub)
            return  # a cache that cannot be written only costs speed
        with self._lock:
            if self._size is None:
                self._size = self._count()
            else:
                self._size += len(data)
            over = self._size > self.max_bytes
        if over:
            self.evict()

    def _entries(self) -> list[tuple[int, int, Path]]:
        out = []
        if not self.root.is_dir():
            return out
        for sub in os.scandir(self.root):
            if not sub.is_dir():
                continue
            for f in os.scandir(sub.path):
                if f.name.endswith(SUFFIX):
                    try:
                        st = f.stat()
                    except OSError:
                        continue
                    out.append((st.st_mtime_ns, st.st_size, Path(f.path)))
        return out

    def _count(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def evict(self) -> int:
        """Remove the least recently used entries until the folder holds at most 90 % of the bound; returns how
        many went."""
        with self._lock:
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            target = int(self.max_bytes * 0.9)
            gone = 0
            for _, size, path in entries:
                if total <= target:
                    break
                try:
                    path.unlink()
                except OSError:
                    continue
                total -= size
                gone += 1
            self._size = total
            return gone


def variant(max_side: int, quality: int, overlay: str) -> str:
    """The part of the key that says how a frame was made: output size, JPEG quality and overlay."""
    return f"side{int(max_side)}|q{int(quality)}|{overlay}"


def track_digest(*arrays) -> str:
    """A short digest of the gaze drawn on the frames (the track's arrays and the circle radius)."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
        h.update(b"|")
    return h.hexdigest()[:24]




MEMORY_FRAMES = 1024  # JPEGs a video keeps in memory


def jpegs_once(video, idx: list[int], overlay: bool) -> list[bytes]:
    """The JPEGs of frames ``idx`` of ``video`` (a `streamgaze.eval.frames.VideoContext`): from its memory cache,
    else from its ``disk_cache``, else decoded by ``video.encode_jpegs`` and kept in both. A frame another request
    of the run is decoding at the moment is waited for, not decoded twice. Counts go to ``video.counts``."""
    lock, memory = video._lock, video._cache
    with lock:
        have = {i: memory[(i, overlay)] for i in idx if (i, overlay) in memory}
        for i in have:
            memory.move_to_end((i, overlay))
        todo = [i for i in idx if i not in have]
        waits = {i: video._pending[(i, overlay)] for i in todo if (i, overlay) in video._pending}
        mine = [i for i in todo if i not in waits]
        for i in mine:
            video._pending[(i, overlay)] = threading.Event()
    decoded: list[int] = []
    try:
        keys = {}
        if mine and video.disk_cache is not None:
            keys = video._disk_keys(mine, overlay)
            for i in mine:
                jpeg = video.disk_cache.get(keys[i])
                if jpeg is not None:
                    have[i] = jpeg
        decoded = [i for i in mine if i not in have]
        if decoded:
            fresh = video.encode_jpegs(decoded, overlay)
            have.update(fresh)
            if video.disk_cache is not None:
                for i in decoded:
                    video.disk_cache.put(keys[i], fresh[i])
    finally:
        with lock:
            for i in mine:
                if i in have:
                    memory[(i, overlay)] = have[i]
                video._pending.pop((i, overlay)).set()
            while len(memory) > MEMORY_FRAMES:
                memory.popitem(last=False)
    late = 0
    for i, done in waits.items():
        done.wait()
        with lock:
            got = memory.get((i, overlay))
        if got is None and video.disk_cache is not None:  # decoded ahead, already out of memory
            got = video.disk_cache.get(video._disk_keys([i], overlay)[i])
        if got is None:  # the other request failed (or the frame left memory already): decode it here
            got = video.encode_jpegs([i], overlay)[i]
            late += 1
        have[i] = got
    with lock:
        ahead = 0  # frames decoded ahead for the run and sent now for the first time: counted as decoded
        for i in idx:
            if (i, overlay) in video._fresh:
                video._fresh.discard((i, overlay))
                ahead += 1
        video.counts.decoded += len(decoded) + late + ahead
        video.counts.cached += len(idx) - len(decoded) - late - ahead
    return [have[i] for i in idx]
