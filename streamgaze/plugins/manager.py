"""The plugin manager: built-ins and third-party packages arrive through the ``streamgaze`` entry-point group.

Entry points are loaded on first use, never at import. A plugin that fails to load is recorded as broken
(``streamgaze tasks list`` shows it) and only commands that need it fail; ``STREAMGAZE_STRICT_PLUGINS=1``
makes a load failure fatal (tests and CI set it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from streamgaze.plugins import hookspecs
from streamgaze.errors import PluginError, StreamGazeError

GROUP = "streamgaze"
KINDS = {
    "answer_logic": "streamgaze_answer_logic",
    "gaze_loaders": "streamgaze_gaze_loaders",
    "fixation_detectors": "streamgaze_fixation_detectors",
    "object_labellers": "streamgaze_object_labellers",
    "models": "streamgaze_models",
    "validators": "streamgaze_validators",
}


@dataclass(frozen=True)
class Source:
    """Where a plugin came from: entry-point name, distribution and version."""

    plugin: str
    distribution: str
    version: str

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


class Plugins:
    """A loaded plugin manager plus the provenance of every plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.sources: dict[int, Source] = {}
        self.broken: dict[str, str] = {}

    def register(self, module: Any, source: Source) -> None:
        self.pm.register(module, name=source.plugin)
        self.sources[id(module)] = source

    def load_entry_points(self) -> None:
        strict = os.environ.get("STREAMGAZE_STRICT_PLUGINS") == "1"
        only = {n for n in os.environ.get("STREAMGAZE_LOAD_PLUGINS", "").split(",") if n}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            if only and ep.name not in only:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist
            source = Source(ep.name, dist.metadata["Name"] if dist else "?", dist.version if dist else "?")
            try:
                self.register(ep.load(), source)
            except Exception as exc:  # a broken plugin must not take the host down
                if strict:
                    raise PluginError(ep.name, "loading", exc) from exc
                self.broken[ep.name] = f"{type(exc).__name__}: {exc}"
        self.pm.check_pending()

    def source_of(self, plugin_obj: Any) -> Source:
        return self.sources.get(id(plugin_obj), Source(self.pm.get_name(plugin_obj) or "?", "?", "?"))

    def collect(self, hook_name: str) -> list[tuple[Source, Any]]:
        """Call a provider hook on every plugin separately, so an error names its plugin."""
        out = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            source = self.source_of(impl.plugin)
            try:
                result = impl.function()
            except Exception as exc:
                raise PluginError(source.plugin, hook_name, exc) from exc
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
    raise StreamGazeError(f"unknown {label} {name!r}; available: {available}")
