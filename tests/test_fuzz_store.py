"""Every command that opens a store, against files that are not a usable store: one line, exit 2, file untouched.

The bad stores: another application's DuckDB file, a streamgaze store missing a table, a truncated DuckDB file, a
text file, a folder, and a path under a file. Each command is run as the user runs it (``python -m
streamgaze.cli``); its other inputs are valid, so the store is the only problem. Also: two processes writing one
store at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from streamgaze.store import open_store
from streamgaze.tasks.testing import toy_store

ENV = {**os.environ, "STREAMGAZE_PROGRESS": "0"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def digest(path: Path) -> str:
    """sha256 of a file, of every file under a folder, or of nothing."""
    if path.is_dir():
        return json.dumps({str(p.relative_to(path)): digest(p) for p in sorted(path.rglob("*")) if p.is_file()})
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """A toy store, its questions, and an actions CSV to ingest."""
    root = tmp_path_factory.mktemp("good")
    toy_store(root / "toy.duckdb").close()
    r = cli("generate", "--store", str(root / "toy.duckdb"), "--out", str(root / "qa"))
    assert r.returncode == 0, r.stderr
    csv = root / "actions.csv"
    csv.write_text("t_start,t_end,label\n0.0,2.0,take cup\n", encoding="utf-8")
    return {"root": root, "store": root / "toy.duckdb", "qa": root / "qa", "csv": csv}


def _other_app(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER, total DOUBLE)")
    con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.close()
    return path


def _missing_gaze(good: dict, path: Path) -> Path:
    path.write_bytes(good["store"].read_bytes())
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE gaze")
    con.close()
    return path


def _truncated(good: dict, path: Path) -> Path:
    data = good["store"].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(path: Path) -> Path:
    path.write_text("video_id,t_s,x,y\nv1,0.0,0.5,0.5\n", encoding="utf-8")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    (path / "keep.txt").write_text("mine\n")
    return path


def _under_file(path: Path) -> Path:
    path.write_text("a file, not a folder\n")
    return path / "store.duckdb"


BAD = {
    "other-app": lambda good, p: _other_app(p),
    "missing-table": _missing_gaze,
    "truncated": _truncated,
    "text-file": lambda good, p: _text(p),
    "folder": lambda good, p: _folder(p),
    "under-a-file": lambda good, p: _under_file(p),
}
# what the one line says, by class (it always names the file)
SAYS = {
    "other-app": "not a streamgaze store",
    "missing-table": "lacks table gaze",
    "truncated": "truncated or corrupt",
    "text-file": "not a DuckDB file",
    "folder": "is a folder",
    "under-a-file": "is a file, not a folder",
}


def _commands(good: dict, store: Path, out: Path) -> dict[str, list[str]]:
    s = str(store)
    return {
        "ingest": ["ingest", "actions-csv", str(good["csv"]), "--store", s, "--video-id", "toy_kitchen"],
        "fixations": ["fixations", "--store", s],
        "objects": ["objects", "--store", s, "--labeller", "annotation"],
        "generate": ["generate", "--store", s, "--out", str(out / "qa")],
        "eval": ["eval", "--qa", str(good["qa"]), "--model", "random", "--out", str(out / "run"), "--store", s],
        "export": ["export", "streamgaze-json", "--qa", str(good["qa"]), "--out", str(out / "export"), "--store", s],
        "review-score": ["review-score", "--store", s],
        "sql": ["sql", "select count(*) from qa_items", "--store", s],
        "render-overlay": ["render", "overlay", "--store", s, "--out", str(out / "render")],
        "export-parquet": ["export", "parquet", "--store", s, "--out", str(out / "parquet")],
    }


COMMANDS = ["ingest", "fixations", "objects", "generate", "eval", "export", "review-score", "sql", "render-overlay",
            "export-parquet"]


@pytest.mark.parametrize("bad", list(BAD))
def test_bad_store_is_refused_untouched(good, bad, tmp_path):
    """Every command on its own copy of the bad store, run side by side: each leaves its copy byte-identical."""
    def one(name: str) -> str | None:
        made = BAD[bad](good, (tmp_path / name).mkdir() or tmp_path / name / "store.duckdb")
        watched = made.parent if bad == "under-a-file" else made  # the file in the way, for a path under a file
        before = digest(watched)
        r = cli(*_commands(good, made, tmp_path / f"out-{name}")[name])
        lines = r.stderr.splitlines()
        ok = (r.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and str(made) in lines[0]
              and SAYS[bad] in lines[0] and "Traceback" not in r.stderr + r.stdout and digest(watched) == before)
        return None if ok else f"{name}: exit {r.returncode}, stderr {r.stderr!r}, changed {digest(watched) != before}"

    with ThreadPoolExecutor(max_workers=len(COMMANDS)) as pool:
        problems = [p for p in pool.map(one, COMMANDS) if p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("args", [("sql", "SELECT max(length(item)) FROM qa_items"), ("generate", "--out", "OUT"), ("export", "streamgaze-json", "--qa", "QA", "--out", "OUT"),
                                  ("export", "parquet", "--out", "OUT")])
def test_a_store_with_a_damaged_block_is_one_line(good, tmp_path, args):
    """Garbage over the second half of a full-size store: the checksum failure surfaces when a block is read, as one
    line (exit 2, no traceback), and the file is left as it was."""
    store = tmp_path / "s.duckdb"
    data = bytearray(good["store"].read_bytes())
    half = len(data) // 2
    data[half:] = random.Random(0).randbytes(len(data) - half)
    store.write_bytes(bytes(data))
    before = digest(store)
    args = [str(tmp_path / "out") if a == "OUT" else str(good["qa"]) if a == "QA" else a for a in args]
    r = cli(*args, "--store", str(store))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert "Traceback" not in r.stderr and digest(store) == before


def test_a_new_store_that_fails_leaves_no_file(good, tmp_path):
    store = tmp_path / "new" / "store.duckdb"
    r = cli("fixations", "--store", str(store))
    assert r.returncode == 2 and not (tmp_path / "new").exists()
    r = cli("ingest", "actions-csv", str(tmp_path / "none.csv"), "--store", str(store), "--video-id", "v")
    assert r.returncode == 2 and not (tmp_path / "new").exists()


def test_fixations_on_a_store_without_gaze_rows_adds_nothing(good, tmp_path):
    store = tmp_path / "s.duckdb"
    store.write_bytes(good["store"].read_bytes())
    before = digest(store)
    r = cli("fixations", "--store", str(store))
    assert r.returncode == 2 and r.stderr.startswith(f"Error: {store}: no gaze") and digest(store) == before


def test_old_store_without_version_row_is_read_and_versioned_on_write(good, tmp_path):
    store = tmp_path / "old.duckdb"
    store.write_bytes(good["store"].read_bytes())
    con = duckdb.connect(str(store))
    con.execute("DROP TABLE meta")
    con.close()
    before = digest(store)
    r = cli("sql", "select count(*) as n from qa_items", "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert digest(store) == before  # reading never writes
    r = cli("generate", "--store", str(store), "--out", str(tmp_path / "qa"))
    assert r.returncode == 0, r.stderr
    with open_store(store, read_only=True) as s:
        assert s.rows("SELECT value FROM meta WHERE key = 'schema_version'") == [{"value": "1"}]


def _qa_ids(store: Path) -> list[str]:
    with open_store(store, read_only=True) as s:
        return [r["id"] for r in s.rows("SELECT id FROM qa_items ORDER BY id")]


def test_two_writers_one_wins(good, tmp_path):
    """A streamgaze process holds the store's write transaction; a second writer gets one line, exit 2."""
    store = tmp_path / "s.duckdb"
    store.write_bytes(good["store"].read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys\n"
            "from streamgaze.store import open_store\n"
            f"s = open_store({str(store)!r})\n"
            "with s.transaction() as con:\n"
            "    con.execute(\"DELETE FROM qa_items WHERE id NOT IN (SELECT min(id) FROM qa_items)\")\n"
            "    print('holding', flush=True)\n"
            "    sys.stdin.readline()\n"
            "s.close()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "holding"
        r = cli("generate", "--store", str(store), "--out", str(tmp_path / "qa"), "--seed", "5")
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines() == [f"Error: store {store} is in use by another streamgaze process (a store has "
                                         "one writer at a time); try again when it has finished"]
        r2 = cli("fixations", "--store", str(store))
        assert r2.returncode == 2 and "is in use by another streamgaze process" in r2.stderr
    finally:
        holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0
    assert len(_qa_ids(store)) == 1  # exactly the winner's rows


def test_two_generate_runs_at_once(good, tmp_path):
    """Two real `generate` runs started together: each wins or is refused with the one line; the store holds
    the rows of a run that won, whole."""
    store = tmp_path / "s.duckdb"
    store.write_bytes(good["store"].read_bytes())
    procs = [subprocess.Popen([sys.executable, "-m", "streamgaze.cli", "generate", "--store", str(store), "--out",
                               str(tmp_path / f"qa{i}"), "--seed", str(i + 1)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for i in range(2)]
    done = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for rc, err in done:
        assert rc == 0 or (rc == 2 and len(err.splitlines()) == 1 and "in use by another streamgaze process" in err), err
    winners = [i for i, (rc, _) in enumerate(done) if rc == 0]
    assert winners
    ids = _qa_ids(store)
    candidates = []
    for i in winners:
        lines = [json.loads(x) for f in sorted((tmp_path / f"qa{i}").glob("*.jsonl")) for x in f.read_text().splitlines()]
        candidates.append(sorted(q["id"] for q in lines))
    assert ids in candidates
    time.sleep(0)
