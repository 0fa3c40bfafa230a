"""Eval benchmarks. Run: python bench/bench_eval.py [n_questions] [--no-render] [--frames-only] [--repeats=N]

1. Throughput of the runner against a loopback OpenAI-compatible server that answers after 300 ms: questions per
   second at 32 requests in flight versus 1 (the reference's sequential loop), and their ratio.
2. Frame sampling: 16 frames evenly over a 60 s 640x480 24 fps clip (cold: a new capture each time), by seeking
   every frame, by grabbing through the video, by the hybrid reader the eval uses (grab short hops, seek long
   ones), and by the eval's `VideoContext` with one capture and with two in parallel, decoding only and with the
   resize and JPEG encoding that is sent; wall time (median, best) and CPU time (median) of N repeats.
3. The same questions with 16 frames from the minute's clip, read through a store and from a released StreamGaze
   folder (``--videos``, no store), in the same run: questions per second of each and their ratio.
4. Overlay render of that minute (`render overlay`): full size, half size (the default), half size at 12 fps;
   the 3-minute demo video costs about three times these.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

import openai  # noqa: E402,F401  (import cost out of the timing)

from fake_chat_server import SlowChatServer  # noqa: E402
from streamgaze.eval.runner import EvalConfig, run_eval  # noqa: E402

DELAY_S = 0.3


def main(n: int = 64) -> None:
    server = SlowChatServer("A", DELAY_S)
    base = server.url
    with tempfile.TemporaryDirectory() as d:
        qa = Path(d) / "qa"
        qa.mkdir()
        rows = [json.dumps({"id": f"q{i}", "task": "past_scene_recall", "family": "past", "video_id": "v",
                            "question": f"question {i}?", "options": ["a", "b", "c", "d"], "answer": "A",
                            "answer_text": "a", "time_s": 1.0, "clip": [0.0, 1.0], "evidence": {}}) for i in range(n)]
        (qa / "past_scene_recall.jsonl").write_text("\n".join(rows) + "\n")
        rates = {}
        for conc, count in ((1, min(n, 16)), (32, n)):
            sub = qa.parent / f"qa{conc}"
            sub.mkdir()
            (sub / "past_scene_recall.jsonl").write_text("\n".join(rows[:count]) + "\n")
            t0 = time.perf_counter()
            run_eval(sub, EvalConfig("text-only:bench", Path(d) / f"R{conc}", base_url=base, concurrency=conc))
            dt = time.perf_counter() - t0
            rates[conc] = count / dt
            print(f"concurrency {conc:>2}: {count} questions in {dt:.2f} s = {rates[conc]:.2f} q/s")
        print(f"speed-up 32 vs 1: {rates[32] / rates[1]:.1f}x (ideal {min(32, n)}x at {DELAY_S * 1000:.0f} ms per reply)")
    server.shutdown()


def make_clip(path: Path, seconds: float = 60.0, fps: int = 24, size=(640, 480)) -> None:
    """A moving textured scene (a panning gradient with shapes), written with OpenCV's mp4v like the demo's."""
    import cv2
    import numpy as np

    w, h = size
    rng = np.random.default_rng(0)
    pano = rng.integers(0, 255, (h // 24, (w * 3) // 24, 3), dtype=np.uint8)  # smooth texture, like a real scene
    pano = cv2.resize(pano, (w * 3, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        x, y = int(rng.integers(0, w * 3)), int(rng.integers(0, h))
        cv2.rectangle(pano, (x, y), (x + 60, y + 40), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    n = int(seconds * fps)
    for i in range(n):
        x0 = int((w * 2) * (0.5 - 0.5 * np.cos(2 * np.pi * i / n)))
        writer.write(np.ascontiguousarray(pano[:, x0:x0 + w]))
    writer.release()


def _timed(fn, repeats: int = 7) -> tuple[float, float, float]:
    """Median and best wall time and median CPU time (time.process_time: all threads of this process) in ms."""
    import statistics

    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def bench_frames(clip: Path, repeats: int = 7) -> None:
    import cv2
    import numpy as np

    from streamgaze.eval.frames import FrameReader, VideoContext, frame_indices
    from streamgaze.gaze.overlay import GazeTrack

    fps, n = 24.0, 1440
    idx = frame_indices((0.0, 60.0), fps, n, 16)
    empty = GazeTrack(np.zeros(0), np.zeros(0), np.zeros(0))

    def reader(gap):
        r = FrameReader(clip)
        r.read(idx, gap)
        r.close()

    def context(jpeg: bool, readers: str | None = None):
        old = os.environ.get("STREAMGAZE_FRAME_READERS")
        if readers:
            os.environ["STREAMGAZE_FRAME_READERS"] = readers
        try:
            v = VideoContext("bench", clip, fps, 640, 480, n, empty)
            v.jpegs(idx, overlay=False) if jpeg else v.raw_frames(idx)
            v.close()
        finally:
            if readers:
                os.environ.pop("STREAMGAZE_FRAME_READERS", None)
                if old is not None:
                    os.environ["STREAMGAZE_FRAME_READERS"] = old

    def default_capture():  # what the first harness did: OpenCV's default decoder threads, seek every frame
        cap = cv2.VideoCapture(str(clip))
        for i in idx:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            cap.read()
        cap.release()

    print(f"\n16 frames from a 60 s 640x480 24 fps clip (cold capture each time; of {repeats}: wall median / best, "
          f"CPU median; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}):")
    rows = [("seek every frame, default decoder threads", default_capture),
            ("seek every frame, 1 decoder thread", lambda: reader(-1)),
            ("sequential grab through the clip", lambda: reader(10**9)),
            ("hybrid (grab hops <= 16 frames, else seek)", lambda: reader(None)),
            ("eval decode, 1 capture", lambda: context(False, "1")),
            ("eval decode, 2 captures in parallel", lambda: context(False, "2")),
            ("eval + resize + JPEG (what is sent), 1 capture", lambda: context(True, "1")),
            ("eval + resize + JPEG, 2 captures in parallel", lambda: context(True, "2")),
            ("eval + resize + JPEG, default (auto)", lambda: context(True))]
    for name, fn in rows:
        med, best, cpu = _timed(fn, max(3, repeats // 2) if "sequential" in name else repeats)
        print(f"  {name:<48} {med:7.1f} ms  (best {best:6.1f}; CPU {cpu:6.1f})", flush=True)


def bench_release(clip: Path, tmp: Path, n: int = 64) -> None:
    """Eval throughput (frames sent, gaze none) from a store and from a released folder, same questions."""
    import pyarrow as pa

    from streamgaze.gaze.video import probe_video
    from streamgaze.store import open_store

    info = probe_video(clip)
    store = tmp / "bench_store.duckdb"
    with open_store(store) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": ["clip60"], "dataset": ["bench"], "path": [str(clip)], "fps": [info.fps],
                                      "width": [info.width], "height": [info.height], "duration_s": [info.duration_s]}))
    times = [5 + (i * 53) % 55 for i in range(n)]
    opts = ["A. a", "B. b", "C. c", "D. d"]
    items = [{"video_path": "/nowhere/clip60.mp4", "questions": [
        {"question": f"question {i}?", "time_stamp": f"00:{t:02d}", "answer": "A", "options": opts}]} for i, t in enumerate(times)]
    rel = tmp / "REL"
    (rel / "qa").mkdir(parents=True)
    (rel / "videos" / "original_video").mkdir(parents=True)
    os.link(clip, rel / "videos" / "original_video" / "clip60.mp4")
    (rel / "qa" / "past_scene_recall.json").write_text(json.dumps(items))
    server = SlowChatServer("A", DELAY_S)
    rates = {}
    for name, kw in (("store", {"store": store}), ("release folder", {"videos": rel / "videos"})):
        t0 = time.perf_counter()
        run_eval(rel / "qa", EvalConfig("openai:bench", tmp / f"R-{name}", base_url=server.url, concurrency=32, **kw))
        rates[name] = n / (time.perf_counter() - t0)
        print(f"16 frames, {name:<15}: {n} questions = {rates[name]:.2f} q/s")
    print(f"release folder / store: {rates['release folder'] / rates['store']:.2f}x")
    server.shutdown()


def bench_render(clip: Path, tmp: Path) -> None:
    import numpy as np
    import pyarrow as pa

    from streamgaze.gaze.overlay import render_overlay
    from streamgaze.store import open_store

    store = tmp / "store.duckdb"
    t = np.arange(0, 60, 1 / 120)
    with open_store(store) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": ["bench"], "dataset": ["bench"], "path": [str(clip)], "fps": [24.0],
                                      "width": [640], "height": [480], "duration_s": [60.0]}))
        st.insert("gaze", pa.table({"video_id": ["bench"] * len(t), "t_s": t, "x": 0.5 + 0.3 * np.sin(t),
                                    "y": 0.5 + 0.2 * np.cos(t), "valid": np.ones(len(t), bool)}))
    print("\noverlay render of 60 s 640x480 24 fps (mp4v; x3 for the demo's 3 minutes):")
    for name, kw in (("full size, 24 fps", {"scale": 1.0}), ("half size, 24 fps (default)", {}),
                     ("half size, 12 fps", {"fps": 12.0}), ("full size, 12 fps", {"scale": 1.0, "fps": 12.0})):
        t0 = time.perf_counter()
        (out,) = render_overlay(store, tmp / "render", **kw)
        dt = time.perf_counter() - t0
        print(f"  {name:<30} {dt:6.2f} s  (3 min ~ {3 * dt:5.1f} s)  {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    reps = [int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--repeats=")]
    if "--frames-only" not in sys.argv:
        main(int(args[0]) if args else 128)
    with tempfile.TemporaryDirectory() as d:
        clip = Path(d) / "clip60.mp4"
        make_clip(clip)
        bench_frames(clip, reps[0] if reps else 7)
        if "--frames-only" not in sys.argv:
            bench_release(clip, Path(d), int(args[0]) // 2 if args else 64)
        if "--no-render" not in sys.argv and "--frames-only" not in sys.argv:
            bench_render(clip, Path(d))
