"""Shared fixtures: the synthetic world (the test bed every stage is checked against)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")
# the eval's frame cache goes to a folder of the test session, never the user's cache folder
os.environ.setdefault("STREAMGAZE_FRAME_CACHE_DIR", tempfile.mkdtemp(prefix="streamgaze-test-frames-"))


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A 45-second synthetic recording (seed 1); a few seconds to make, made once per session."""
    from streamgaze.demo.synthetic import make_world

    return make_world(tmp_path_factory.mktemp("small_world"), seed=1, minutes=0.75)


@pytest.fixture(scope="session")
def small_truth(small_world) -> dict:
    return json.loads(Path(small_world.truth).read_text(encoding="utf-8"))


def store_from_truth(world, path, truth: dict | None = None) -> Path:
    """A store built by hand from a world's truth: videos, gaze, actions and episodes = the true dwells (e1..eN).

    Independent of the ingest and fixation stages, so later stages can be tested on known episodes.
    """
    from streamgaze.store import open_store

    truth = truth or json.loads(Path(world.truth).read_text(encoding="utf-8"))
    vid, v, g = world.video_id, truth["video"], truth["gaze"]
    with open_store(path) as store, store.transaction():
        store.insert("videos", pa.table({
            "video_id": [vid], "dataset": ["synthetic"], "path": [str(world.video)], "fps": [float(v["fps"])],
            "width": [v["width"]], "height": [v["height"]], "duration_s": [float(v["duration_s"])],
            "n_frames": [v["n_frames"]]}))
        n = len(g["t_s"])
        store.insert("gaze", pa.table({
            "video_id": [vid] * n, "t_s": g["t_s"], "x": pa.array(g["x"], pa.float64()),
            "y": pa.array(g["y"], pa.float64()), "valid": g["valid"], "in_frame": g["valid"]}))
        eps = truth["dwells"]
        centres = []
        for d in eps:
            xs = [x for t, x, ok in zip(g["t_s"], g["x"], g["valid"]) if ok and d["t_start"] <= t <= d["t_end"]]
            ys = [y for t, y, ok in zip(g["t_s"], g["y"], g["valid"]) if ok and d["t_start"] <= t <= d["t_end"]]
            centres.append((sum(xs) / len(xs), sum(ys) / len(ys)))
        store.insert("episodes", pa.table({
            "video_id": [vid] * len(eps), "episode_id": [f"e{i + 1}" for i in range(len(eps))],
            "t_start": [d["t_start"] for d in eps], "t_end": [d["t_end"] for d in eps],
            "x": [c[0] for c in centres], "y": [c[1] for c in centres], "n_fixations": [1] * len(eps)}))
        acts = truth["actions"]
        store.insert("actions", pa.table({
            "video_id": [vid] * len(acts), "t_start": [a["t_start"] for a in acts],
            "t_end": [a["t_end"] for a in acts], "label": [a["label"] for a in acts]}))
    return Path(path)


@pytest.fixture
def truth_store(small_world, small_truth, tmp_path) -> Path:
    """A fresh store of the small world with the true dwells as episodes (see `store_from_truth`)."""
    return store_from_truth(small_world, tmp_path / "store.duckdb", small_truth)


@pytest.fixture
def llm_env(monkeypatch, tmp_path):
    """Generation's LLM steps with no settings from the environment, one process and a cache folder of the test's
    own; the in-process caches are emptied before and after (as a new process would have them)."""
    from streamgaze.llm import cache as llm

    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")
    monkeypatch.setenv("STREAMGAZE_WORKERS", "1")
    for var in ("OPENAI_API_KEY", llm.ENV_MODEL, llm.ENV_BASE_URL):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(llm.ENV_CACHE, str(tmp_path / "default-cache"))
    llm._MEMORY.clear()
    llm.step_llm.cache_clear()
    yield
    llm._MEMORY.clear()
    llm.step_llm.cache_clear()
