"""File names made from data, and output paths checked before anything is written.

Every file name the pipeline derives from data (a video id, a task id, a model name) goes through `safe_name`,
and every output file through `inside`, so an output never leaves its folder:

- `safe_name(text)`: a name that is one plain path component. Text that is already one (letters, digits and
  punctuation, spaces; no ``/`` or ``\\``, no control or other invisible character, no leading dot, no trailing dot
  or space, at most `MAX_NAME_BYTES` bytes of UTF-8) is returned unchanged, so ``P01_kitchen``
  stays ``P01_kitchen``. Anything else has each offending character replaced by ``_``, is cut to length, and
  gets ``-`` and 8 hex digits of the SHA-1 of the original text appended, so two different ids never share a
  file name (``a/b`` and ``a_b`` stay apart).
- `inside(folder, name)`: ``folder / name``, refused with a one-line `InputError` when ``name`` is not one plain
  component or the path (symbolic links followed) would end up outside ``folder``.
- `check_outputs(folder, names)`: every target checked before the first byte is written: the folder is a folder
  (or can be created: its nearest existing parent is a writable folder), it is writable, and no target is a
  folder. One `InputError` naming the path; nothing created.
- `write_files(folder, {name: text})`: `check_outputs`, then each file written to a temporary name beside it and
  renamed into place once all are written, so a failure leaves no partial set.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

from streamgaze.errors import InputError

MAX_NAME_BYTES = 120  # leaves room for suffixes (``_overlay.mp4``, ``.part.mp4``) under the usual 255-byte limit
_FORBIDDEN = set("/\\")


def _bad_char(c: str) -> bool:
    return c in _FORBIDDEN or unicodedata.category(c)[0] in "CZ" and c != " "


def _cut(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def safe_name(text) -> str:
    """``text`` as one safe file-name component (see the module's rules); unchanged when already safe."""
    text = str(text)
    clean = "".join("_" if _bad_char(c) else c for c in text)
    clean = clean.rstrip(". ")
    if clean.startswith("."):
        clean = "_" + clean[1:]
    if clean == text and text and len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_cut(clean, MAX_NAME_BYTES - 9) or '_'}-{digest}"


def inside(folder, name: str) -> Path:
    """``folder / name``, or an `InputError` when that path would not be a file directly inside ``folder``."""
    folder = Path(folder)
    name = str(name)
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or os.sep in name or (os.altsep and os.altsep in name)):
        raise InputError(folder, f"the file name {name!r} would leave the folder")
    path = folder / name
    real_folder = os.path.realpath(folder)
    if os.path.dirname(os.path.realpath(path)) != real_folder:
        raise InputError(path, "the path leaves its folder (a symbolic link?)")
    return path


def check_folder(folder) -> Path:
    """A folder outputs can go to: an existing writable folder, or one that can be created. Creates nothing."""
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise InputError(folder, "is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(folder, "the folder is not writable")
        return folder
    parent = folder.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(folder, f"cannot create the folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(folder, f"cannot create the folder: {parent} is not writable")
    return folder


def check_outputs(folder, names) -> dict[str, Path]:
    """Check ``folder`` and every file name in ``names`` before anything is written; returns name -> path."""
    folder = check_folder(folder)
    out = {}
    for name in names:
        path = inside(folder, name)
        if path.is_dir():
            raise InputError(path, "is a folder; an output file was to be written there")
        if path.exists() and not path.is_file():
            raise InputError(path, "is not a regular file; an output file was to be written there")
        out[name] = path
    return out


def temp_name(path: Path) -> Path:
    """A temporary file beside ``path`` (hidden, this process's), renamed onto ``path`` when complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_files(folder, files: dict[str, str | bytes], *, before_rename=None) -> list[Path]:
    """Write every ``name: content`` into ``folder``, all or nothing as far as the file system allows: every path
    is checked first, each file goes to a temporary name, and the temporary files are renamed into place only
    when all are written (after ``before_rename()``, e.g. a store transaction; if it raises, nothing is
    renamed and the temporary files are removed)."""
    paths = check_outputs(folder, list(files))
    temps: list[tuple[Path, Path]] = []
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            tmp = temp_name(paths[name])
            temps.append((tmp, paths[name]))
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content, encoding="utf-8")
        if before_rename is not None:
            before_rename()
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in temps:
        os.replace(tmp, path)
    return [path for _, path in temps]
