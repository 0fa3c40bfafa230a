"""The objects stage: for every dwell episode, name the gazed object, the other objects inside the field of
view (a circle around the gaze point) and the objects visible outside it.

A labeller is a plugin (hook ``streamgaze_object_labellers``) subclassing `Labeller`. The stage reads the store,
asks the labeller for rows, validates them all, then replaces each video's ``objects`` rows in one transaction:
a failure anywhere leaves the store file as it was. A labeller whose external calls failed returns `Labelled`
naming the episodes they were for: those keep their previous ``objects`` rows, the others are written, and the
stage then raises `ExternalCallsFailed` (exit code 1) with the counts.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from streamgaze.errors import ExternalCallsFailed, PluginError, StreamGazeError
from streamgaze.llm.batch import UNANSWERED, BatchSession
from streamgaze.plugins.manager import lookup
from streamgaze.progress import stage
from streamgaze.shards import Shard, record_shard
from streamgaze.store import SCHEMA, Store, open_store

ROLES = ("gazed", "fov", "outside")


@dataclass
class Labelled:
    """A labeller's answer when some of its external calls failed (a plain list of rows means none did).

    ``rows`` as `Labeller.label` returns them, for the episodes that were labelled; ``failed`` maps each episode
    whose call failed to a short reason ("connection refused", "HTTP 500"): those episodes keep the rows they
    had in the store. ``requests`` and ``failed_requests`` count the calls, for the summary.
    """

    rows: list[dict]
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0


class Labeller:
    """Object labeller protocol.

    ``label(store, video, episodes, options)`` gets one ``videos`` row (a dict), that video's episodes (dicts with
    ``video_id, episode_id, t_start, t_end, x, y``, in time order) and the stage options, and returns rows
    ``{"episode_id", "name", "role", "attributes"}`` (``role`` in gazed/fov/outside, at most one gazed per episode,
    ``attributes`` a dict or a JSON object string). ``store`` is open read-only. Raise `InputError` for a problem
    the user can fix; any other exception is reported as a `PluginError` naming the labeller. When external calls
    (an API) failed for some episodes, return `Labelled` naming them: they keep their previous rows.
    """

    name = "labeller"

    def label(self, store: Store, video: dict, episodes: list[dict], options: dict) -> list[dict] | Labelled:
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


def run_objects(store_path: str | Path, labeller: str = "annotation", options: dict | None = None,
                shard: Shard | None = None, batch: BatchSession | None = None) -> str:
    """Label every episode of every video in the store (of ``shard``'s videos only, when given; the others keep
    their rows); returns a one-line summary.

    ``batch`` (a labeller with ``supports_batch``): in ``write`` mode the requests go to Batch files and the store
    is left as it is; in ``read`` mode the answers come from Batch results (checked before the store is written),
    and episodes whose requests are still unanswered keep their rows and are listed."""
    options = dict(options or {})
    entry = lookup("object_labellers", labeller)
    impl = entry.obj
    if batch is not None:
        if not getattr(impl, "supports_batch", False):
            raise StreamGazeError(f"labeller {labeller!r} sends no requests: Batch files are for the openai labeller")
        options["batch"] = batch
    # read and label on a read-only connection; open for writing only once everything is valid
    results: dict[str, list[dict]] = {}
    extra: dict[str, dict[str, list[dict]]] = {}
    n_episodes = 0
    failed: dict[tuple[str, str], str] = {}  # (video_id, episode_id) -> reason: these keep their rows
    n_requests = n_failed_requests = 0
    with open_store(store_path, read_only=True) as store:
        videos = [v for v in store.rows("SELECT * FROM videos ORDER BY video_id") if shard is None or shard.holds(v["video_id"])]
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
                ids = {e["episode_id"] for e in eps}
                if isinstance(rows, Labelled):
                    gone = {str(k): str(v) for k, v in rows.failed.items()}
                    if not set(gone) <= ids:
                        raise StreamGazeError(f"labeller {labeller!r}, video {video['video_id']!r}: failed episodes "
                                              f"{sorted(set(gone) - ids)} are not episodes of the video")
                    failed.update({(video["video_id"], k): v for k, v in gone.items()})
                    n_requests += int(rows.requests)
                    n_failed_requests += int(rows.failed_requests)
                    rows = rows.rows
                checked = _validate(rows, video["video_id"], ids, labeller)
                results[video["video_id"]] = [r for r in checked if (video["video_id"], r["episode_id"]) not in failed]
                side = getattr(impl, "side_tables", None)  # optional: rows of other tables, same transaction
                for table, trows in ((side(video["video_id"]) or {}) if side else {}).items():
                    if table not in SCHEMA or table == "objects":
                        raise StreamGazeError(f"labeller {labeller!r} returned rows for unknown table {table!r}")
                    extra.setdefault(table, {})[video["video_id"]] = list(trows)
                n_episodes += len(eps)
                advance(len(eps))
    if batch is not None and batch.mode == "write":
        files = batch.close()
        return (f"objects ({labeller}): wrote {batch.writer.requests} requests ({batch.writer.bytes / 1e6:.1f} MB) in "
                f"{len(files)} file(s) to {batch.folder} for {n_episodes} episodes; nothing sent, store unchanged")
    unanswered_note, waiting = "", set()
    if batch is not None:
        batch.check()  # a result of another run: nothing is written
        waiting = {k for k, why in failed.items() if why == UNANSWERED}
        if waiting:
            failed = {k: v for k, v in failed.items() if k not in waiting}
            unanswered_note = f"; {len(waiting)} episodes kept their rows{batch.unanswered_note()}"
    all_rows = [r for vid in sorted(results) for r in results[vid]]
    columns = ["video_id", "episode_id", "name", "role", "attributes", "labeller"]
    table = pa.table({c: pa.array([r[c] for r in all_rows], pa.string()) for c in columns})
    with open_store(store_path) as store:
        with store.transaction() as con:
            for vid in sorted(results):  # every episode's rows go, but those of the episodes whose calls failed
                kept = [ep for (v, ep) in [*failed, *waiting] if v == vid]
                con.execute("DELETE FROM objects WHERE video_id = ? AND episode_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                            [vid, kept])
            store.insert("objects", table, columns)
            for name in sorted(extra):
                trows = [r for vid in sorted(extra[name]) for r in extra[name][vid]]
                store.replace_video_rows(name, sorted(extra[name]), pa.Table.from_pylist(trows) if trows else pa.table({}))
            record_shard(con, "objects", shard, labeller=labeller)
    counts = {role: sum(r["role"] == role for r in all_rows) for role in ROLES}
    labelled = len({(r["video_id"], r["episode_id"]) for r in all_rows if r["role"] == "gazed"})
    if failed:
        reasons = Counter(failed.values()).most_common()
        why = ", ".join(f"{r}" for r, _ in reasons[:2]) + (", ..." if len(reasons) > 2 else "")
        calls = (f"{n_failed_requests} of {n_requests} requests failed" if n_requests
                 else f"calls for {len(failed)} episode(s) failed")
        if len(failed) >= n_episodes:
            raise ExternalCallsFailed(f"objects ({labeller}): {calls} ({why}); the store's objects were kept")
        raise ExternalCallsFailed(f"objects ({labeller}): {calls} ({why}); {len(failed)} of {n_episodes} episodes kept "
                             f"their previous objects, the other {n_episodes - len(failed)} were labelled "
                             f"({labelled} with a gazed object); run it again to retry them")
    return (f"objects ({labeller}{f', shard {shard}' if shard else ''}): {n_episodes} episodes in {len(results)} video(s), {labelled} with a gazed object; "
            f"rows: {counts['gazed']} gazed, {counts['fov']} fov, {counts['outside']} outside{unanswered_note}")
