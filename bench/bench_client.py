"""Client benchmarks (issue 18): the eval's requests per second, CPU per request and behaviour against rate-limited
and failing endpoints, for this tree and for a baseline tree in the same run.

Run: python bench/bench_client.py [--baseline-python PATH] [--only a,b,...] [--quick]

Each scenario runs in a child process per interpreter (this one, and ``--baseline-python``, e.g. a venv with
main installed, default /tmp/venv/bin/python if present); the chat server runs in a process of its own
(fake_chat_server.py), so the CPU measured is the client's alone. Scenarios:
- inflight32: 960 text-only questions at 32 in flight, 300 ms per reply: share of the in-flight limit (32 / 0.3 s),
  beside the share a bare HTTP client reaches against the same server (the server's own ceiling);
- warm128: 16 frames per question from a 60 s clip, 128 in flight, 300 ms, a warm frame cache: requests/s;
- distinct: a 10-minute demo world video, 231 requests of 16 distinct frames, 64 in flight, 300 ms, a cold frame
  cache: requests/s and CPU per request and per frame, against OpenCV's plain sequential decode of that video;
- limited: a server taking 8 requests in flight (429 above), 100 ms per reply, 1,080 questions at 64 in flight;
- scripted: a server answering 429, 429, 429, 500, then 200 to each request, 1,080 questions at 64 in flight
  (backoff 0.1 s).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORLD_DIR = Path(tempfile.gettempdir()) / "streamgaze-bench-client-world"
DELAY_S = 0.3


# -- the child: one scenario with whichever streamgaze this interpreter imports ----------------------------------
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _questions(qa: Path, clips: list[tuple[float, float]], video_id: str = "v") -> None:
    qa.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"id": f"q{i}", "task": "past_scene_recall", "video_id": video_id, "question": f"question {i}?",
                        "options": ["a", "b", "c", "d"], "answer": "A", "clip": [round(a, 3), round(b, 3)]})
            for i, (a, b) in enumerate(clips)]
    (qa / "past_scene_recall.jsonl").write_text("\n".join(rows) + "\n")


def _store(path: Path, video: Path, video_id: str = "v") -> None:
    import pyarrow as pa

    from streamgaze.gaze.video import probe_video
    from streamgaze.store import open_store

    info = probe_video(video)
    with open_store(path) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": [video_id], "dataset": ["bench"], "path": [str(video)],
                                      "fps": [info.fps], "width": [info.width], "height": [info.height],
                                      "duration_s": [info.duration_s]}))


def _config(model: str, out: Path, url: str, concurrency: int, **kw):
    from streamgaze.eval.config import EvalConfig

    known = {f.name for f in fields(EvalConfig)}
    return EvalConfig(model, out, base_url=url, concurrency=concurrency, **{k: v for k, v in kw.items() if k in known})


def _timed_eval(qa: Path, config) -> dict:
    from streamgaze.eval.runner import run_eval

    c0, t0 = _cpu(), time.perf_counter()
    run_eval(qa, config)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    rows = [json.loads(x) for x in (config.out_dir / "predictions.jsonl").read_text().splitlines()]
    run = json.loads((config.out_dir / "run.json").read_text())
    out = {"n": len(rows), "seconds": wall, "per_s": len(rows) / wall, "cpu_ms_per_request": 1000 * cpu / len(rows),
           "errors": sum(r["outcome"] == "error" for r in rows)}
    if "frames" in run.get("last_run", {}):
        out["frames"] = run["last_run"]["frames"]
    return out


def bare_client_share(url: str, n: int, in_flight: int) -> float:
    """The share of the in-flight limit that a bare client reaches against the same server: ``in_flight``
    keep-alive connections of raw HTTP/1.1 on asyncio streams, no prompts, parsing or files. The server's own
    ceiling, the peer of the client's figure."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}).encode()
    head = (f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        for _ in range(k):
            writer.write(head + body)
            await writer.drain()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        writer.close()

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // in_flight) for _ in range(in_flight)))
        return (n // in_flight * in_flight) / (time.perf_counter() - t0) / (in_flight / DELAY_S)

    return asyncio.run(run())


def child(name: str, url: str, work: Path, quick: bool) -> dict:
    os.environ["STREAMGAZE_PROGRESS"] = "0"
    os.environ["STREAMGAZE_FRAME_CACHE_DIR"] = str(work / "frame-cache")
    # one question first, so that imports and plugin loading are not counted as the requests' CPU
    _questions(work / "warmup", [(0.0, 1.0)])
    _timed_eval(work / "warmup", _config("text-only:bench", work / "R-warmup", url, 1))
    if name == "inflight32":
        n = 320 if quick else 960  # 30 rounds: a steady-state rate, the run's start-up amortised
        _questions(work / "qa", [(0.0, 1.0)] * n)
        r = _timed_eval(work / "qa", _config("text-only:bench", work / "R", url, 32))
        r["share_of_limit"] = r["per_s"] / (32 / DELAY_S)
        r["bare_client_share"] = bare_client_share(url, n, 32)
        return r
    if name == "warm128":
        sys.path.insert(0, str(HERE))
        from bench_eval import make_clip

        clip = work / "clip60.mp4"
        make_clip(clip)
        _store(work / "store.duckdb", clip)
        n = 384 if quick else 768
        ends = [7.5 * (k + 1) for k in range(8)]
        _questions(work / "qa", [(e - 7.0, e) for e in ends] * (n // 8))
        kw = {"store": work / "store.duckdb", "frames": 16}
        # warm the frame cache (this tree's is on disk; a tree without one starts each run cold in memory)
        _timed_eval(work / "qa", _config("openai:bench", work / "warm", url, 128, **kw))
        return _timed_eval(work / "qa", _config("openai:bench", work / "R", url, 128, **kw))
    if name == "distinct":
        video = WORLD_DIR / "world" / "video.mp4"
        _store(work / "store.duckdb", video)
        from streamgaze.gaze.video import probe_video

        info = probe_video(video)
        n = 231
        span = info.duration_s - 2.0
        clips = [((i + 1) * span / n - 20.0 + 0.37 * (i % 7), (i + 1) * span / n + 0.37 * (i % 7)) for i in range(n)]
        clips = [(max(0.0, a), b) for a, b in clips]
        _questions(work / "qa", clips)
        r = _timed_eval(work / "qa", _config("openai:bench", work / "R", url, 64, store=work / "store.duckdb",
                                             frames=16, frame_cache=work / "cold-cache"))
        frames = r.get("frames", {}).get("decoded") or n * 16
        r["cpu_ms_per_frame"] = r["cpu_ms_per_request"] * r["n"] / frames
        r["distinct_frames"] = frames
        return r
    if name == "limited":
        n = 360 if quick else 1080
        _questions(work / "qa", [(0.0, 1.0)] * n)
        return _timed_eval(work / "qa", _config("text-only:bench", work / "R", url, 64))
    if name == "scripted":
        n = 360 if quick else 1080
        _questions(work / "qa", [(0.0, 1.0)] * n)
        return _timed_eval(work / "qa", _config("text-only:bench", work / "R", url, 64, backoff_s=0.1))
    raise SystemExit(f"unknown scenario {name}")


# -- the driver --------------------------------------------------------------------------------------------------
SERVERS = {"inflight32": ["--delay", "0.3"], "warm128": ["--delay", "0.3"], "distinct": ["--delay", "0.3"],
           "limited": ["--delay", "0.1", "--capacity", "8"], "scripted": ["--delay", "0.02", "--script", "429,429,429,500"]}


def sequential_decode_ms(video: Path) -> float:
    """CPU ms per frame of OpenCV's plain sequential decode (default settings) of the whole video."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    c0, n = _cpu(), 0
    while cap.grab():
        ok, _ = cap.retrieve()
        n += ok
    cap.release()
    return 1000 * (_cpu() - c0) / max(n, 1)


def ensure_world() -> Path:
    video = WORLD_DIR / "world" / "video.mp4"
    if not video.exists():
        from streamgaze.demo.synthetic import make_world

        print("making the 10-minute demo world (once) ...", flush=True)
        make_world(WORLD_DIR / "world", seed=0, minutes=10.0)
    return video


def run_one(python: str, name: str, quick: bool) -> dict:
    server = subprocess.Popen([python, str(HERE / "fake_chat_server.py"), *SERVERS[name]], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as work:
            cmd = [python, str(Path(__file__).resolve()), "--child", name, url, work] + (["--quick"] if quick else [])
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                return {"failed": res.stderr.strip().splitlines()[-1:] or ["?"]}
            out = json.loads(res.stdout.strip().splitlines()[-1])
        server.stdin.write("stats\n")
        server.stdin.flush()
        out["server"] = json.loads(server.stdout.readline())
        return out
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description="Client benchmarks against a baseline interpreter, in one run.")
    parser.add_argument("--baseline-python", metavar="PATH", help="python of the baseline (default /tmp/venv/bin/python "
                        "if present)")
    parser.add_argument("--only", metavar="A,B", help=f"scenarios to run (default all: {','.join(SERVERS)})")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    baseline = args.baseline_python
    if baseline is None and Path("/tmp/venv/bin/python").exists():
        baseline = "/tmp/venv/bin/python"
    only = args.only.split(",") if args.only else list(SERVERS)
    pythons = [("this tree", sys.executable)] + ([("baseline", baseline)] if baseline else [])
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} (other work on the machine counts); "
          f"baseline: {baseline or 'none'}", flush=True)
    if "distinct" in only:
        video = ensure_world()
        print(f"OpenCV sequential decode of {video.name}: {sequential_decode_ms(video):.2f} ms CPU per frame", flush=True)
    for name in only:
        results = {}
        for label, py in pythons:
            results[label] = r = run_one(py, name, quick)
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
            print(f"{name:<11} {label:<10} {json.dumps(shown)}", flush=True)
        a, b = results.get("this tree", {}), results.get("baseline", {})
        if "per_s" in a and "per_s" in b:
            print(f"{name:<11} ratio      requests/s {a['per_s'] / b['per_s']:.2f}x, CPU per request "
                  f"{a['cpu_ms_per_request'] / b['cpu_ms_per_request']:.2f}x", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, url, work = sys.argv[2], sys.argv[3], Path(sys.argv[4])
        print(json.dumps(child(name, url, work, "--quick" in sys.argv)))
    else:
        main()
