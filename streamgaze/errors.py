"""Errors that reach the user as one line and exit code 2 (`ExternalCallsFailed`: 1).

Every user-facing failure (bad file, bad spec, broken plugin) is a `StreamGazeError`, a plain exception: the
command line (`streamgaze.cli`) prints ``Error: <message>`` on stderr and exits with ``exit_code`` (2). The
message names the file (and row, column or field) and the problem.
"""
from __future__ import annotations

import traceback

#: Longest message kept whole; a longer one (a huge cell quoted by a parser) keeps its head and tail.
MAX_MESSAGE = 2000


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself escaped the way `repr` does (``\\x1b``,
    ``\\x00``, ``\\u202e``, lone surrogates): input data quoted in a message never reaches the terminal raw."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def one_line(message) -> str:
    """A message as one printable line: whitespace runs (newlines too) become one space, control characters are
    escaped (`printable`), and over `MAX_MESSAGE` characters the middle is cut."""
    text = printable(" ".join(str(message).split()))
    if len(text) > MAX_MESSAGE:
        cut = len(text) - MAX_MESSAGE
        text = f"{text[:MAX_MESSAGE // 2]} ... ({cut} characters left out) ... {text[-MAX_MESSAGE // 2:]}"
    return text


def shorten(value, limit: int = 60) -> str:
    """A value quoted in a message: printable and at most ``limit`` characters (``...`` marks a cut)."""
    text = printable(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StreamGazeError(Exception):
    """A problem the user can fix; one line (``message``, printable: see `one_line`), exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        self.message = one_line(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def format_message(self) -> str:
        return self.message


class InputError(StreamGazeError):
    """Bad input data: ``InputError(path, problem, row=..., column=...)``."""

    def __init__(self, path, problem: str, *, row: int | None = None, column: str | None = None):
        where = str(path)
        if row is not None:
            where += f": row {row}"
        if column is not None:
            where += f": column {column!r}"
        self.path, self.problem, self.row, self.column = str(path), problem, row, column
        super().__init__(f"{where}: {problem}")


class SpecError(StreamGazeError):
    """A task spec or template that cannot be used: names the file, the field and the reason."""

    def __init__(self, path, field: str | None, problem: str):
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {problem}")


class PluginError(StreamGazeError):
    """An exception raised inside a plugin, named by plugin (and package), what it was doing, and where."""

    def __init__(self, plugin: str, what: str, exc: BaseException, *, source=None):
        self.plugin = plugin
        package = f" (package {source.distribution} {source.version})" if source is not None and source.distribution != "?" else ""
        at = _where(exc)
        super().__init__(f"plugin {plugin!r}{package} failed in {what}{': ' + at if at else ''}: {type(exc).__name__}: {exc}")


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` outside pluggy and importlib: the plugin's own code."""
    found = ""
    for frame, line in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if "pluggy" in name or name.startswith("<frozen") or "importlib" in name:
            continue
        found = f"{name}:{line}"
    return found


class ExternalCallsFailed(StreamGazeError):
    """Calls to an outside service (a model endpoint, a labeller's API) failed after their retries: the command
    finished, what succeeded was written, what failed kept its previous rows, and a rerun retries the rest. One
    line with the counts, exit code 1 (bad input is 2)."""

    exit_code = 1

    def __init__(self, message):
        super().__init__(message)
