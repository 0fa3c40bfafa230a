"""The objects stage with the annotation labeller, on a store built by hand from the synthetic truth."""
from __future__ import annotations

import json
import shutil

import pytest

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.objects.stage import Labeller, run_objects
from streamgaze.store import open_store


def _rows(path):
    with open_store(path, read_only=True) as s:
        return s.rows("SELECT * FROM objects ORDER BY episode_id, role, name")


def test_annotation_labels_true_dwells(truth_store, small_truth, small_world):
    summary = run_objects(truth_store, "annotation", {})
    assert "episodes" in summary and "\n" not in summary
    rows = _rows(truth_store)
    names = {o["id"]: o["name"] for o in small_truth["objects"]}
    attrs = {o["name"]: o["attributes"] for o in small_truth["objects"]}
    by_ep: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        assert r["video_id"] == small_world.video_id and r["labeller"] == "annotation"
        assert json.loads(r["attributes"]) == attrs[r["name"]]
        by_ep.setdefault(r["episode_id"], {"gazed": [], "fov": [], "outside": []})[r["role"]].append(r["name"])
    dwells = small_truth["dwells"]
    assert len(by_ep) == len(dwells)
    fps, n = small_truth["video"]["fps"], small_truth["video"]["n_frames"]
    for i, d in enumerate(dwells):
        roles = by_ep[f"e{i + 1}"]
        assert roles["gazed"] == [names[d["object"]]]
        all_names = roles["gazed"] + roles["fov"] + roles["outside"]
        assert len(all_names) == len(set(all_names))  # roles disjoint
        f0, f1 = int(round(d["t_start"] * fps)), min(int(round(d["t_end"] * fps)), n - 1)
        ids = {v: k for k, v in names.items()}
        for name in roles["fov"] + roles["outside"]:
            assert any(b is not None for b in small_truth["frames"]["boxes"][ids[name]][f0:f1 + 1])
    assert sum(len(v["fov"]) for v in by_ep.values()) > 0
    assert sum(len(v["outside"]) for v in by_ep.values()) > 0
    # rerun replaces, never duplicates
    run_objects(truth_store, "annotation", {})
    assert len(_rows(truth_store)) == len(rows)


def test_fov_radius_option(truth_store):
    run_objects(truth_store, "annotation", {"fov_radius": "0.01"})
    small = sum(r["role"] == "fov" for r in _rows(truth_store))
    run_objects(truth_store, "annotation", {"fov_radius": 0.3})
    big = sum(r["role"] == "fov" for r in _rows(truth_store))
    assert small < big
    with pytest.raises(InputError):
        run_objects(truth_store, "annotation", {"fov_radius": "wide"})


def test_missing_truth_leaves_store_untouched(truth_store, tmp_path):
    run_objects(truth_store, "annotation", {})
    before = truth_store.read_bytes()
    missing = tmp_path / "nope" / "truth.json"
    with pytest.raises(InputError) as info:
        run_objects(truth_store, "annotation", {"truth": str(missing)})
    assert info.value.exit_code == 2 and str(missing) in info.value.message
    assert truth_store.read_bytes() == before


def test_invalid_truth_is_input_error(truth_store, tmp_path):
    bad = tmp_path / "truth.json"
    bad.write_text('{"video": {}}')
    before = truth_store.read_bytes()
    with pytest.raises(InputError) as info:
        run_objects(truth_store, "annotation", {"truth": bad})
    assert str(bad) in info.value.message
    assert truth_store.read_bytes() == before


def test_default_truth_beside_video(truth_store, small_world, tmp_path):
    # default: truth.json beside videos.path; move the world and point the video there
    moved = tmp_path / "moved"
    shutil.copytree(small_world.root, moved)
    with open_store(truth_store) as s, s.transaction():
        s.con.execute("UPDATE videos SET path = ?", [str(moved / "video.mp4")])
    run_objects(truth_store, "annotation", {})
    assert _rows(truth_store)
    (moved / "truth.json").unlink()
    with pytest.raises(InputError):
        run_objects(truth_store, "annotation", {})


def test_plugin_exception_becomes_plugin_error(truth_store, monkeypatch):
    from streamgaze.objects import stage as objects
    from streamgaze.errors import PluginError
    from streamgaze.plugins.manager import Entry, Source

    class Broken(Labeller):
        def label(self, store, video, episodes, options):
            raise ZeroDivisionError("boom")

    class Bad(Labeller):
        def label(self, store, video, episodes, options):
            return [{"episode_id": "e1", "name": "mug", "role": "nearby"}]

    before = truth_store.read_bytes()
    for impl, err in ((Broken(), PluginError), (Bad(), StreamGazeError)):
        monkeypatch.setattr(objects, "lookup", lambda kind, name, impl=impl: Entry(name, impl, Source("x", "x", "1")))
        with pytest.raises(err) as info:
            run_objects(truth_store, "broken", {})
        assert info.value.exit_code == 2
        assert truth_store.read_bytes() == before


def test_unknown_labeller(truth_store):
    with pytest.raises(StreamGazeError):
        run_objects(truth_store, "no-such-labeller", {})
