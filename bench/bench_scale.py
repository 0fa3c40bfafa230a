"""Speed of `streamgaze merge` (stores) and `streamgaze export parquet`, each against DuckDB's own bulk path on the
same store in the same run:

- merge of N copies of a store (every unit of every table compared across the N inputs, then copied once) against
  DuckDB's ``COPY FROM DATABASE`` of one copy into a new file (the floor: the same rows written once, no checks);
- ``export parquet`` against DuckDB's ``EXPORT DATABASE ... (FORMAT parquet)`` of the same store.

    python bench/bench_scale.py [videos] [seconds_per_video] [shards]

The store is synthetic: per video 120 Hz gaze, one episode every 2 s with 6 objects each, 30 questions.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")

from streamgaze.merge import merge  # noqa: E402
from streamgaze.parquet import export_parquet  # noqa: E402
from streamgaze.store import open_store  # noqa: E402


def make_store(path: Path, videos: int, seconds: int) -> None:
    with open_store(path) as store, store.transaction() as con:
        con.execute(f"""INSERT INTO videos SELECT 'v' || lpad(i::VARCHAR, 4, '0'), CASE WHEN i % 3 = 0 THEN 'egtea'
                        ELSE 'ego4d' END, '/data/v' || i || '.mp4', 30, 1920, 1080, {seconds}, {seconds * 30}
                        FROM range({videos}) t(i)""")
        con.execute(f"""INSERT INTO gaze SELECT v.video_id, s / 120.0, 0.5 + 0.3 * sin(s / 50.0), 0.5 + 0.2 * cos(s / 70.0),
                        true, true FROM videos v, range({seconds * 120}) t(s)""")
        con.execute(f"""INSERT INTO episodes SELECT v.video_id, 'e' || e, e * 2.0, e * 2.0 + 1.2, 0.5, 0.5, 3
                        FROM videos v, range({seconds // 2}) t(e)""")
        con.execute("""INSERT INTO objects SELECT e.video_id, e.episode_id, 'object ' || k, CASE WHEN k = 0 THEN 'gazed'
                       WHEN k < 3 THEN 'fov' ELSE 'outside' END, '{"colour": "red"}', 'annotation'
                       FROM episodes e, range(6) t(k)""")
        con.execute("""INSERT INTO qa_items SELECT 'task/' || v.video_id || '/' || q, 'task', 'past', v.video_id, q * 5.0,
                       0, q * 5.0, 'Which object?', 'A', 'object 1', repeat('x', 400) FROM videos v, range(30) t(q)""")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(videos: int = 40, seconds: int = 300, shards: int = 4) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        base = root / "base.duckdb"
        make_store(base, videos, seconds)
        copies = [shutil.copy(base, root / f"s{k}.duckdb") for k in range(shards)]
        con = duckdb.connect(str(base), read_only=True)
        gaze = con.execute("SELECT count(*) FROM gaze").fetchall()[0][0]
        con.close()
        size = base.stat().st_size / 1e6
        print(f"store: {videos} videos x {seconds} s, {gaze:,} gaze rows, {size:.0f} MB; {shards} copies")

        def duckdb_copy():
            con = duckdb.connect(str(root / "peer.duckdb"))
            con.execute(f"ATTACH '{copies[0]}' AS src (READ_ONLY)")
            con.execute("COPY FROM DATABASE src TO peer")
            con.close()

        peer = timed(duckdb_copy)
        ours = timed(lambda: merge(copies, root / "merged.duckdb"))
        print(f"merge of {shards} stores: {ours:.2f} s; DuckDB COPY FROM DATABASE of one: {peer:.2f} s; "
              f"ratio {ours / peer:.2f}x")

        def duckdb_export():
            con = duckdb.connect(str(base), read_only=True)
            con.execute(f"EXPORT DATABASE '{root / 'peer-parquet'}' (FORMAT parquet)")
            con.close()

        peer = timed(duckdb_export)
        ours = timed(lambda: export_parquet(base, root / "parquet"))
        print(f"export parquet: {ours:.2f} s; DuckDB EXPORT DATABASE (FORMAT parquet): {peer:.2f} s; ratio {ours / peer:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
