"""The plugin manager: built-ins and third-party packages arrive through the ``streamgaze`` entry-point group.

Entry points are loaded on first use, never at import. A plugin that fails to load is recorded as broken
(``streamgaze tasks list`` shows it) and only commands that need it fail; ``STREAMGAZE_STRICT_PLUGINS=1``
makes a load failure fatal (tests and CI set it).
"""
from __future__ import annotations

import difflib
import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from streamgaze.errors import PluginError, StreamGazeError
from streamgaze.plugins import hookspecs

GROUP = "streamgaze"
KINDS = {
    "answer_logic": "streamgaze_answer_logic",
    "gaze_loaders": "streamgaze_gaze_loaders",
    "fixation_detectors": "streamgaze_fixation_detectors",
    "object_labellers": "streamgaze_object_labellers",
    "models": "streamgaze_models",
    "validators": "streamgaze_validators",
}
#: Provider hooks that return a list of file paths (the others return ``{name: object}``).
PATH_HOOKS = ("streamgaze_task_specs", "streamgaze_suites", "streamgaze_dataset_recipes")


@dataclass(frozen=True)
class Source:
    """Where a plugin came from: entry-point name, distribution and version."""

    plugin: str
    distribution: str
    version: str
    module: str = ""

    @property
    def label(self) -> str:
        if self.distribution == "streamgaze":
            return f"built-in ({self.plugin})"
        return f"{self.distribution} {self.version} ({self.plugin})"


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    source: Source


def strict() -> bool:
    """``STREAMGAZE_STRICT_PLUGINS=1``: a broken plugin is a fatal error (tests and CI), not a skipped one."""
    return os.environ.get("STREAMGAZE_STRICT_PLUGINS") == "1"


def debug() -> bool:
    """``STREAMGAZE_DEBUG=1``: errors print the plugin's traceback, with file and line."""
    return os.environ.get("STREAMGAZE_DEBUG") == "1"


class Plugins:
    """A loaded plugin manager plus the provenance of every plugin.

    A plugin that cannot be used (fails to import, implements a hook that does not exist, raises in a provider hook
    or returns the wrong type) is unregistered and recorded in ``broken`` (one line naming it, its package, the file
    and the problem; the traceback in ``tracebacks``); everything else keeps working. In strict mode it raises.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.sources: dict[int, Source] = {}
        self.broken: dict[str, str] = {}
        self.tracebacks: dict[str, str] = {}

    def register(self, module: Any, source: Source) -> None:
        self.pm.register(module, name=source.plugin)
        self.sources[id(module)] = source
        unknown = self._unknown_hooks(module)
        if unknown:
            self.pm.unregister(module)
            del self.sources[id(module)]
            raise PluginError(source.plugin, "registering", AttributeError(unknown), source=source)

    def _unknown_hooks(self, module: Any) -> str:
        """A message for the hook implementations of ``module`` that match no hook specification (a typo)."""
        specs = [n for n in vars(hookspecs) if n.startswith(GROUP + "_")]
        problems = []
        for name, caller in sorted(vars(self.pm.hook).items()):
            for impl in caller.get_hookimpls() if caller.spec is None else ():
                if impl.plugin is module:
                    code = impl.function.__code__
                    close = difflib.get_close_matches(name, specs, n=1)
                    problems.append(f"unknown hook {name!r} at {code.co_filename}:{code.co_firstlineno}"
                                    + (f" (did you mean {close[0]!r}?)" if close else ""))
        return "; ".join(problems)

    def mark_broken(self, source: Source, what: str, exc: BaseException) -> None:
        """Record ``source`` as broken (and drop it), or raise when strict."""
        error = exc if isinstance(exc, PluginError) else PluginError(source.plugin, what, exc, source=source)
        if strict():
            raise error from exc
        self.broken[source.plugin] = str(error)
        self.tracebacks[source.plugin] = "".join(traceback.format_exception(exc))
        for plugin in [p for p in self.pm.get_plugins() if self.source_of(p).plugin == source.plugin]:
            self.pm.unregister(plugin)

    def load_entry_points(self) -> None:
        only = {n for n in os.environ.get("STREAMGAZE_LOAD_PLUGINS", "").split(",") if n}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            if only and ep.name not in only:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist
            source = Source(ep.name, dist.metadata["Name"] if dist else "?", dist.version if dist else "?", ep.value)
            try:
                self.register(ep.load(), source)
            except Exception as exc:  # a broken plugin must not take the host down
                self.mark_broken(source, "loading", exc)

    def source_of(self, plugin_obj: Any) -> Source:
        return self.sources.get(id(plugin_obj), Source(self.pm.get_name(plugin_obj) or "?", "?", "?"))

    def collect(self, hook_name: str) -> list[tuple[Source, Any]]:
        """Call a provider hook on every plugin separately, so an error names its plugin; a plugin that raises or
        returns the wrong type (not a dict of names, or a list of paths for spec and suite files) is broken."""
        expected = (list, tuple) if hook_name in PATH_HOOKS else dict
        out = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            source = self.source_of(impl.plugin)
            try:
                result = impl.function()
                if result is not None and not isinstance(result, expected):
                    kind = "a list of paths" if expected is not dict else "a dict of name -> object"
                    raise TypeError(f"{hook_name} returned {type(result).__name__}, not {kind}")
            except Exception as exc:
                self.mark_broken(source, hook_name, exc)
                continue
            if result is not None:
                out.append((source, result))
        return sorted(out, key=lambda pair: pair[0].plugin)

    def registry(self, kind: str) -> dict[str, Entry]:
        """``{name: Entry}`` for one kind; a name given by two plugins is an error naming both."""
        entries: dict[str, Entry] = {}
        for source, provided in self.collect(KINDS[kind]):
            for name, obj in provided.items():
                if name in entries:
                    raise StreamGazeError(
                        f"{kind} {name!r} is provided by both {entries[name].source.plugin!r} and {source.plugin!r}"
                    )
                entries[name] = Entry(name, obj, source)
        return dict(sorted(entries.items()))

    def check_all(self) -> None:
        """Call every provider hook once, so each plugin that is broken in any of them is in ``broken``."""
        for hook_name in (*KINDS.values(), *PATH_HOOKS):
            self.collect(hook_name)

    def broken_note(self) -> str:
        """`` (broken plugins: a, b; `streamgaze plugins list`)`` for "unknown X" errors, or nothing."""
        if not self.broken:
            return ""
        return f" (broken plugins, which may provide it: {', '.join(sorted(self.broken))}; see `streamgaze plugins list`)"


@lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    plugins = Plugins()
    plugins.load_entry_points()
    return plugins


def registry(kind: str) -> dict[str, Entry]:
    return get_plugins().registry(kind)


def lookup(kind: str, name: str) -> Entry:
    """One registered object, or an error listing what is available."""
    entries = registry(kind)
    if name in entries:
        return entries[name]
    label = kind.replace("_", " ").rstrip("s")
    available = ", ".join(entries) or "none"
    raise StreamGazeError(f"unknown {label} {name!r}; available: {available}{get_plugins().broken_note()}")
