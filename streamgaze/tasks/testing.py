"""Test support shipped with the package: the toy timeline of tasks.md 0.1 as a real store.

Plugin authors use it to test a task against known answers: ``toy_store(tmp_path / "toy.duckdb")``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from streamgaze.store import open_store

TOY_VIDEO = "toy_kitchen"

TOY_EPISODES = [
    # id, t_start, t_end, gazed, fov, outside
    ("e1", 4.0, 7.0, "knife", ["cutting board"], ["fridge", "kettle", "sink"]),
    ("e2", 12.0, 15.5, "tomato", ["cutting board", "knife"], ["bowl", "fridge", "kettle"]),
    ("e3", 20.0, 23.0, "bowl", ["spoon"], ["kettle", "sink", "tomato"]),
    ("e4", 40.0, 44.0, "kettle", ["mug"], ["fridge", "sink", "toaster"]),
    ("e5", 70.0, 73.0, "mug", ["kettle", "spoon"], ["plate", "sponge", "toaster"]),
    ("e6", 110.0, 114.0, "sink", ["sponge"], ["mug", "plate", "teabag"]),
]

TOY_ACTIONS = [
    (0.5, 3.5, "take knife"),
    (16.0, 19.0, "cut tomato"),
    (27.0, 35.0, "put tomato in bowl"),
    (47.0, 60.0, "fill kettle"),
    (77.0, 90.0, "pour water"),
    (118.0, 125.0, "wash bowl"),
]

TOY_ATTRIBUTES = {
    "knife": {"color": "silver", "material": "metal"},
    "cutting board": {"color": "brown", "material": "wood"},
    "tomato": {"color": "red", "shape": "round", "texture": "smooth", "state": "whole"},
    "bowl": {"color": "pink", "material": "ceramic"},
    "kettle": {"color": "black", "material": "plastic", "state": "closed"},
    "mug": {"color": "blue", "material": "ceramic"},
    "sink": {"color": "silver", "material": "metal"},
    "spoon": {"color": "silver", "material": "metal"},
    "toaster": {"color": "silver", "material": "metal"},
    "fridge": {"color": "white", "material": "metal"},
    "sponge": {"color": "yellow", "texture": "rough"},
    "plate": {"color": "white", "material": "ceramic"},
}


def write_timeline(store, video_id, episodes, actions=(), attributes=None, duration_s=150.0, dataset="demo") -> None:
    """Write a hand-made timeline (episodes with roles, actions, attributes) into an open store."""
    attributes = attributes or {}
    obj_rows = []
    for eid, _t0, _t1, gazed, fov, outside in episodes:
        roles = ([(gazed, "gazed")] if gazed else []) + [(n, "fov") for n in fov] + [(n, "outside") for n in outside]
        for name, role in roles:
            obj_rows.append((video_id, eid, name, role, json.dumps(attributes.get(name, {})), "manual"))
    with store.transaction():
        store.replace_video_rows(
            "videos", [video_id],
            pa.table({"video_id": [video_id], "dataset": [dataset], "path": [""], "fps": [24.0], "width": [640],
                      "height": [480], "duration_s": [duration_s], "n_frames": [int(duration_s * 24)]}),
        )
        store.replace_video_rows(
            "episodes", [video_id],
            pa.table({"video_id": [video_id] * len(episodes), "episode_id": [e[0] for e in episodes],
                      "t_start": [float(e[1]) for e in episodes], "t_end": [float(e[2]) for e in episodes]}),
        )
        cols = list(zip(*obj_rows)) if obj_rows else [[]] * 6
        store.replace_video_rows(
            "objects", [video_id],
            pa.table({k: pa.array(list(v), pa.string()) for k, v in
                      zip(["video_id", "episode_id", "name", "role", "attributes", "labeller"], cols)}),
        )
        store.replace_video_rows(
            "actions", [video_id],
            pa.table({"video_id": [video_id] * len(actions), "t_start": [float(a[0]) for a in actions],
                      "t_end": [float(a[1]) for a in actions], "label": [a[2] for a in actions]},
                     schema=pa.schema([("video_id", pa.string()), ("t_start", pa.float64()),
                                       ("t_end", pa.float64()), ("label", pa.string())])),
        )


def toy_store(path: str | Path):
    """A store holding the toy timeline of tasks.md 0.1 (video ``toy_kitchen``, 150 s). Returns it open."""
    store = open_store(path)
    write_timeline(store, TOY_VIDEO, TOY_EPISODES, TOY_ACTIONS, TOY_ATTRIBUTES)
    return store
