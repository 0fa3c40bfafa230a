"""Frames decoded ahead of the requests, in video order, on every core.

Read one by one, each request's frames cost a seek (OpenCV decodes forward from a keyframe at least 16 frames
back: about 4 ms a frame on a 640x480 video, ten times a sequential decode). The runner knows every question of
the run before it starts, so it plans instead: the union of the frames the run will send, per video and overlay
mode, sorted, split into contiguous chunks (one per core), each read by its own capture grabbing forward through
short gaps (`PREFETCH_GAP`), resized, JPEG-encoded and put into the frame cache (memory and disk) as it goes.
Requests are asked in the order their frames become ready and wait for a frame being prefetched instead of
decoding it again (`streamgaze.eval.frame_cache.jpegs_once`). Only with the on-disk frame cache on: without it the
frames of a long run would have to stay in memory.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from streamgaze.eval.frame_cache import MEMORY_FRAMES
from streamgaze.eval.frames import JPEG_QUALITY, FrameReader, frame_indices

PREFETCH_GAP = 24  # grab through gaps up to this many frames (a seek costs about as much as 23 grabs)


class _Stopped(Exception):
    pass


class Prefetch:
    """The plan (``rank`` of each frame: its place in its chunk) and the threads reading it; `close` stops them."""

    def __init__(self, jobs: list[tuple], workers: int):
        self.jobs = jobs  # (video, overlay, [indices]) per chunk
        self.rank: dict[tuple, int] = {}
        for video, overlay, chunk in jobs:
            for pos, i in enumerate(chunk):
                self.rank[(id(video), overlay, i)] = pos
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="prefetch") if jobs else None
        self._futures = [self._pool.submit(self._read, *job) for job in jobs] if jobs else []

    def _read(self, video, overlay: bool, chunk: list[int]) -> None:
        import cv2

        keys = video._disk_keys(chunk, overlay)
        done: set[int] = set()

        def keep(frame, i: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            ok, buf = cv2.imencode(".jpg", video._prepare(frame, i, overlay), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            jpeg = buf.tobytes()
            video.disk_cache.put(keys[i], jpeg)
            with video._lock:
                video._cache[(i, overlay)] = jpeg
                while len(video._cache) > MEMORY_FRAMES:
                    video._cache.popitem(last=False)
                video._fresh.add((i, overlay))
                event = video._pending.pop((i, overlay), None)
            done.add(i)
            if event is not None:
                event.set()

        reader = None
        try:
            reader = FrameReader(video.path, video.video_id)
            reader.read(chunk, PREFETCH_GAP, keep)
        except Exception:  # noqa: BLE001 - a frame that cannot be read here is read (and reported) by its request
            pass
        finally:
            if reader is not None:
                reader.close()
            with video._lock:  # what was not prefetched: its requests decode it themselves
                left = [video._pending.pop((i, overlay), None) for i in chunk if i not in done]
            for event in left:
                if event is not None:
                    event.set()

    def ready_rank(self, video, overlay: bool, indices: list[int]) -> int:
        """When a request's frames are all ready: the latest place of one of them in its chunk."""
        return max((self.rank.get((id(video), overlay, i), -1) for i in indices), default=-1)

    def close(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def plan(items, videos: dict, overlay: bool, n_frames: int, workers: int | None = None) -> tuple[Prefetch, list]:
    """Start prefetching the frames of ``items`` (the runner's items; ``videos`` by question id) that the frame
    cache does not have yet; returns the `Prefetch` and the items in the order their frames will be ready."""
    workers = workers or min(os.cpu_count() or 1, 8)
    wanted: dict[int, tuple] = {}
    frames_of = []
    for it in items:
        video = videos.get(it.q["id"]) if hasattr(it, "q") and hasattr(it, "clip") else None
        if video is None or getattr(video, "disk_cache", None) is None or not video.fps:
            frames_of.append((it, None, []))
            continue
        idx = frame_indices(it.clip, video.fps, video.n_frames, n_frames)
        frames_of.append((it, video, idx))
        wanted.setdefault(id(video), (video, set()))[1].update(idx)
    jobs = []
    for video, idx in wanted.values():
        keys = video._disk_keys(sorted(idx), overlay)
        todo = []
        with video._lock:
            for i in sorted(idx):
                if (i, overlay) in video._cache or (i, overlay) in video._pending:
                    continue
                if video.disk_cache._path(keys[i]).exists():
                    continue
                video._pending[(i, overlay)] = threading.Event()
                todo.append(i)
        if not todo:
            continue
        per = max(1, -(-len(todo) // workers))
        jobs += [(video, overlay, todo[k:k + per]) for k in range(0, len(todo), per)]
    pre = Prefetch(jobs, workers)
    order = sorted(range(len(frames_of)), key=lambda n: (pre.ready_rank(frames_of[n][1], overlay, frames_of[n][2])
                                                         if frames_of[n][1] is not None else -1, n))
    return pre, [frames_of[n][0] for n in order]
