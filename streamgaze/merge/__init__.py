"""``streamgaze merge A B ... --out C``: the shards of a run (`streamgaze.shards`) put back together.

Three kinds of input, told apart by what they are, all inputs of one kind:

- stores (DuckDB files): `streamgaze.merge.stores`;
- question folders written by ``generate --shard``: `streamgaze.merge.questions`;
- eval run folders (with ``run.json``): `streamgaze.merge.runs`.

Every input is read and every rule checked before anything is written; a refusal is one line (exit code 2) and
leaves no file behind. The output ``C`` must be new (a store path that does not exist, or a folder that does not
exist or is empty): a merge never overwrites. It is written under a temporary name beside ``C`` and renamed
into place when complete.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.eval.runner import RUN
from streamgaze.tasks.generate import REPORT_FILE


def input_kind(path: Path) -> str:
    """``store``, ``run`` or ``questions``; an `InputError` for anything else."""
    if path.is_file():
        return "store"
    if not path.exists():
        raise InputError(path, "no such store file or folder")
    if (path / RUN).is_file():
        return "run"
    if (path / REPORT_FILE).is_file():
        return "questions"
    raise InputError(path, f"neither a store file, an eval run folder ({RUN}) nor a question folder ({REPORT_FILE})")


def merge(inputs, out) -> str:
    """Merge ``inputs`` (two or more of one kind) into the new ``out``; returns a one-line summary."""
    from streamgaze.merge import questions, runs, stores

    inputs = [Path(p) for p in inputs]
    out = Path(out)
    if len(inputs) < 2:
        raise StreamGazeError("merge needs two or more inputs")
    seen: dict[str, Path] = {}
    for p in inputs:
        real = os.path.realpath(p)
        if real in seen:
            raise InputError(p, f"given twice (also as {seen[real]})")
        seen[real] = p
    if os.path.realpath(out) in seen:
        raise InputError(out, "is one of the inputs; --out must be a new path")
    kinds = {p: input_kind(p) for p in inputs}
    if len(set(kinds.values())) > 1:
        first = inputs[0]
        other = next(p for p in inputs if kinds[p] != kinds[first])
        raise InputError(other, f"is a {_NAMES[kinds[other]]}, but {first} is a {_NAMES[kinds[first]]}; merge inputs of one kind")
    kind = kinds[inputs[0]]
    check_new_output(out, folder=kind != "store")
    return {"store": stores.merge_stores, "questions": questions.merge_question_folders,
            "run": runs.merge_runs}[kind](inputs, out)


_NAMES = {"store": "store file", "run": "eval run folder", "questions": "question folder"}


def check_new_output(out: Path, *, folder: bool) -> None:
    """``out`` must be new: no file there (a folder output may be an existing empty folder), and its parent a
    writable folder or one that can be created."""
    if out.exists():
        if folder and out.is_dir() and not any(out.iterdir()):
            pass
        else:
            raise InputError(out, "already exists; merge writes a new " + ("folder (or into an empty one)" if folder else "store file"))
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(out, f"cannot be made: {parent} is not a writable folder")


@contextmanager
def staged_output(out: Path, *, folder: bool):
    """A temporary path beside ``out`` to write the whole result to; renamed onto ``out`` when the block ends
    without an exception, removed otherwise."""
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.merging")
    _remove(tmp)
    if folder:
        tmp.mkdir()
    try:
        yield tmp
        if folder and out.is_dir():
            out.rmdir()  # empty (checked): replaced by the complete folder
        os.replace(tmp, out)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
