"""The plugin system keeps its promises: every hook documented and exercised, built-ins through entry points."""
import re
from pathlib import Path

import pytest

from streamgaze.plugins import hookspecs
from streamgaze.errors import StreamGazeError
from streamgaze.plugins.manager import KINDS, Source, get_plugins, lookup, registry

DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("streamgaze_"))


def test_every_hook_is_documented():
    headings = set(re.findall(r"^## (streamgaze_\w+)$", DOCS.read_text(), flags=re.M))
    assert set(HOOKS) == headings


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_registry_has_builtin_entries(kind):
    entries = registry(kind)
    assert entries, f"no built-in {kind}"
    assert all(e.source.distribution == "streamgaze" for e in entries.values())


def test_every_hook_is_implemented_by_a_builtin():
    implemented = {impl.function.__name__ for hook in HOOKS for impl in getattr(get_plugins().pm.hook, hook).get_hookimpls()}
    assert implemented == set(HOOKS)


def test_unknown_names_list_what_is_available():
    with pytest.raises(StreamGazeError, match=r"unknown fixation detector 'nope'; available: .*ivt"):
        lookup("fixation_detectors", "nope")


class _Clash:
    from streamgaze import hookimpl

    @hookimpl
    def streamgaze_fixation_detectors(self):
        return {"ivt": object()}


def test_a_name_provided_twice_names_both_plugins():
    plugins = get_plugins()
    clash = _Clash()
    plugins.register(clash, Source("test_clash", "tests", "0"))
    try:
        with pytest.raises(StreamGazeError, match=r"'ivt' is provided by both '.*' and '.*'"):
            registry("fixation_detectors")
    finally:
        plugins.pm.unregister(clash)
