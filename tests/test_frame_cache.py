"""The eval's persistent frame cache (`streamgaze.eval.frame_cache`): a second run decodes nothing and sends the
same JPEG bytes, the folder stays under its bound (least recently used out), a corrupt entry is ignored and
written again, and ``--no-frame-cache`` keeps nothing."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.frame_cache import SUFFIX, FrameCache
from streamgaze.eval.runner import run_eval
from streamgaze.store import open_store

_spec = importlib.util.spec_from_file_location(
    "fake_chat_server", Path(__file__).resolve().parents[1] / "bench" / "fake_chat_server.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

FPS, W, H, SECONDS = 24, 320, 240, 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 4 s moving-pattern video in a store, and six questions over overlapping clips."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("fc")
    video = root / "v.mp4"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (H // 8, W // 8 * 2, 3), dtype=np.uint8)
    base = cv2.resize(base, (W * 2, H), interpolation=cv2.INTER_CUBIC)
    for i in range(SECONDS * FPS):
        out.write(np.ascontiguousarray(base[:, i * 2:i * 2 + W]))
    out.release()
    store = root / "store.duckdb"
    with open_store(store) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": ["v"], "dataset": ["t"], "path": [str(video)], "fps": [float(FPS)],
                                      "width": [W], "height": [H], "duration_s": [float(SECONDS)]}))
    qa = root / "qa"
    qa.mkdir()
    rows = [json.dumps({"id": f"q{i}", "task": "past_scene_recall", "video_id": "v", "question": f"question {i}?",
                        "options": ["a", "b", "c", "d"], "answer": "A", "clip": [0.5 * i, 0.5 * i + 1.5]})
            for i in range(6)]
    (qa / "past_scene_recall.jsonl").write_text("\n".join(rows) + "\n")
    return root


def run(world: Path, out: Path, **kw) -> tuple[dict, dict[str, bytes]]:
    """Evaluate with 4 frames per question; run.json's frames and each question's request body."""
    with fake.SlowChatServer("A", 0.0, keep_bodies=True) as srv:
        run_eval(world / "qa", EvalConfig("openai:m", out, base_url=srv.url, store=world / "store.duckdb", frames=4,
                                          concurrency=3, **kw))
        bodies = {}
        for raw in srv.bodies:
            content = json.loads(raw)["messages"][0]["content"]
            text = next(p["text"] for p in content if p["type"] == "text")
            bodies[text] = raw
    info = json.loads((out / "run.json").read_text())
    return {**info["last_run"]["frames"], "n": info["frames"]["n"]}, bodies


def entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*" + SUFFIX))


def test_second_run_decodes_nothing_and_sends_the_same_bytes(world, tmp_path):
    cache = tmp_path / "frames"
    first, bodies1 = run(world, tmp_path / "R1", frame_cache=cache)
    assert first["decoded"] > 0 and first["decoded"] + first["cached"] == 24 and first["n"] == 4
    assert len(entries(cache)) == first["decoded"]
    second, bodies2 = run(world, tmp_path / "R2", frame_cache=cache)
    assert (second["decoded"], second["cached"]) == (0, 24)
    assert bodies2 == bodies1  # the same JPEG bytes, byte for byte
    plain, bodies3 = run(world, tmp_path / "R3", frame_cache=False)
    assert plain["decoded"] == first["decoded"] and bodies3 == bodies1


def test_a_corrupt_entry_is_ignored_and_written_again(world, tmp_path):
    cache = tmp_path / "frames"
    _, bodies1 = run(world, tmp_path / "R1", frame_cache=cache)
    files = entries(cache)
    files[0].write_bytes(files[0].read_bytes()[:-10])  # truncated
    data = bytearray(files[1].read_bytes())
    data[-5] ^= 0xFF  # one byte flipped
    files[1].write_bytes(bytes(data))
    files[2].write_bytes(b"")  # empty
    frames, bodies2 = run(world, tmp_path / "R2", frame_cache=cache)
    assert frames["decoded"] == 3 and bodies2 == bodies1
    again, _ = run(world, tmp_path / "R3", frame_cache=cache)
    assert again["decoded"] == 0  # rewritten whole


def test_the_folder_stays_under_its_bound_least_recently_used_out(tmp_path):
    cache = FrameCache(tmp_path / "c", max_bytes=10_000)
    keys = [cache.key("video", i, "v") for i in range(12)]
    for i, k in enumerate(keys[:8]):
        cache.put(k, bytes([i]) * 1000)
        os.utime(cache._path(k), ns=(i * 10**9, i * 10**9))  # put in order, one second apart
    assert cache.get(keys[0]) == bytes([0]) * 1000  # used again: now the most recent
    for k in keys[8:]:
        cache.put(k, b"x" * 1000)
    total = sum(p.stat().st_size for p in entries(tmp_path / "c"))
    assert total <= 10_000
    assert cache.get(keys[0]) is not None and cache.get(keys[1]) is None and cache.get(keys[11]) is not None


def test_cli_frame_cache_flags(world, tmp_path):
    cache = tmp_path / "frames"
    res = CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "random", "--out", str(tmp_path / "R"),
                                   "--frame-cache", str(cache), "--no-frame-cache"])
    assert res.exit_code == 2 and "one or the other" in res.output
    with fake.SlowChatServer("A", 0.0) as srv:
        res = CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "openai:m", "--base-url", srv.url,
                                       "--store", str(world / "store.duckdb"), "--frames", "2",
                                       "--out", str(tmp_path / "R"), "--no-frame-cache"])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(cli, ["eval", "--qa", str(world / "qa"), "--model", "openai:m", "--base-url", srv.url,
                                       "--store", str(world / "store.duckdb"), "--frames", "2",
                                       "--out", str(tmp_path / "R2"), "--frame-cache", str(cache)])
        assert res.exit_code == 0, res.output
    assert not entries(Path(os.environ["STREAMGAZE_FRAME_CACHE_DIR"]) / "nothing") and len(entries(cache)) > 0
    assert json.loads((tmp_path / "R" / "run.json").read_text())["last_run"]["frames"]["decoded"] > 0
