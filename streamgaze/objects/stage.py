"""The objects stage: for every dwell episode, name the gazed object, the other objects inside the field of
view (a circle around the gaze point) and the objects visible outside it.

A labeller is a plugin (hook ``streamgaze_object_labellers``) subclassing `Labeller`. The stage reads the store,
asks the labeller for rows, validates them all, then replaces each video's ``objects`` rows in one transaction:
a failure anywhere leaves the store file as it was.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from streamgaze.errors import PluginError, StreamGazeError
from streamgaze.plugins.manager import lookup
from streamgaze.progress import stage
from streamgaze.store import SCHEMA, Store, open_store

ROLES = ("gazed", "fov", "outside")


class Labeller:
    """Object labeller protocol.

    ``label(store, video, episodes, options)`` gets one ``videos`` row (a dict), that video's episodes (dicts with
    ``video_id, episode_id, t_start, t_end, x, y``, in time order) and the stage options, and returns rows
    ``{"episode_id", "name", "role", "attributes"}`` (``role`` in gazed/fov/outside, at most one gazed per episode,
    ``attributes`` a dict or a JSON object string). ``store`` is open read-only. Raise `InputError` for a problem
    the user can fix; any other exception is reported as a `PluginError` naming the labeller.
    """

    name = "labeller"

    def label(self, store: Store, video: dict, episodes: list[dict], options: dict) -> list[dict]:
        raise NotImplementedError


def _validate(rows: Any, video_id: str, episode_ids: set[str], labeller: str) -> list[dict]:
    if not isinstance(rows, list):
        raise StreamGazeError(f"labeller {labeller!r} returned {type(rows).__name__}, expected a list of rows")
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    gazed: set[str] = set()
    for i, row in enumerate(rows):
        where = f"labeller {labeller!r}, video {video_id!r}, row {i}"
        if not isinstance(row, dict):
            raise StreamGazeError(f"{where}: expected a dict, got {type(row).__name__}")
        ep, name, role = row.get("episode_id"), row.get("name"), row.get("role")
        if ep not in episode_ids:
            raise StreamGazeError(f"{where}: unknown episode_id {ep!r}")
        if not isinstance(name, str) or not name.strip():
            raise StreamGazeError(f"{where}: field 'name' must be a non-empty string")
        if role not in ROLES:
            raise StreamGazeError(f"{where}: field 'role' is {role!r}, expected one of {', '.join(ROLES)}")
        attrs = row.get("attributes") or {}
        if isinstance(attrs, str):
            try:
                attrs = json.loads(attrs)
            except json.JSONDecodeError as exc:
                raise StreamGazeError(f"{where}: field 'attributes' is not JSON: {exc}") from None
        if not isinstance(attrs, dict):
            raise StreamGazeError(f"{where}: field 'attributes' must be a JSON object")
        if role == "gazed":
            if ep in gazed:
                raise StreamGazeError(f"{where}: episode {ep!r} has more than one gazed object")
            gazed.add(ep)
        if (ep, name.strip()) in seen:
            continue  # a name keeps its first role
        seen.add((ep, name.strip()))
        out.append({"video_id": video_id, "episode_id": ep, "name": name.strip(), "role": role,
                    "attributes": json.dumps(attrs, sort_keys=True), "labeller": labeller})
    return out


def run_objects(store_path: str | Path, labeller: str = "annotation", options: dict | None = None) -> str:
    """Label every episode of every video in the store; returns a one-line summary."""
    options = dict(options or {})
    entry = lookup("object_labellers", labeller)
    impl = entry.obj
    # read and label on a read-only connection; open for writing only once everything is valid
    results: dict[str, list[dict]] = {}
    extra: dict[str, dict[str, list[dict]]] = {}
    n_episodes = 0
    with open_store(store_path, read_only=True) as store:
        videos = store.rows("SELECT * FROM videos ORDER BY video_id")
        episodes = store.rows(
            "SELECT video_id, episode_id, t_start, t_end, x, y FROM episodes ORDER BY video_id, t_start, episode_id"
        )
        by_video: dict[str, list[dict]] = {}
        for ep in episodes:
            by_video.setdefault(ep["video_id"], []).append(ep)
        total = len(episodes)
        with stage("objects", total=total or None) as advance:
            for video in videos:
                eps = by_video.get(video["video_id"], [])
                if not eps:
                    results[video["video_id"]] = []
                    continue
                try:
                    rows = impl.label(store, video, eps, options)
                except StreamGazeError:
                    raise
                except Exception as exc:
                    raise PluginError(entry.source.plugin if entry.source else labeller,
                                      f"labelling video {video['video_id']!r} with {labeller!r}", exc) from exc
                results[video["video_id"]] = _validate(rows, video["video_id"], {e["episode_id"] for e in eps},
                                                       labeller)
                side = getattr(impl, "side_tables", None)  # optional: rows of other tables, same transaction
                for table, trows in ((side(video["video_id"]) or {}) if side else {}).items():
                    if table not in SCHEMA or table == "objects":
                        raise StreamGazeError(f"labeller {labeller!r} returned rows for unknown table {table!r}")
                    extra.setdefault(table, {})[video["video_id"]] = list(trows)
                n_episodes += len(eps)
                advance(len(eps))
    all_rows = [r for vid in sorted(results) for r in results[vid]]
    columns = ["video_id", "episode_id", "name", "role", "attributes", "labeller"]
    table = pa.table({c: pa.array([r[c] for r in all_rows], pa.string()) for c in columns})
    with open_store(store_path) as store:
        with store.transaction():
            store.replace_video_rows("objects", sorted(results), table)
            for name in sorted(extra):
                trows = [r for vid in sorted(extra[name]) for r in extra[name][vid]]
                store.replace_video_rows(name, sorted(extra[name]), pa.Table.from_pylist(trows) if trows else pa.table({}))
    counts = {role: sum(r["role"] == role for r in all_rows) for role in ROLES}
    labelled = len({(r["video_id"], r["episode_id"]) for r in all_rows if r["role"] == "gazed"})
    return (f"objects ({labeller}): {n_episodes} episodes in {len(results)} video(s), {labelled} with a gazed object; "
            f"rows: {counts['gazed']} gazed, {counts['fov']} fov, {counts['outside']} outside")
