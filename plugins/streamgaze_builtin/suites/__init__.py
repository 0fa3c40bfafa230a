"""The built-in suites: every ``*.yaml`` in this folder (today ``streamgaze``, the benchmark's ten tasks)."""
from __future__ import annotations

from pathlib import Path

from streamgaze.plugins.api import hookimpl


@hookimpl
def streamgaze_suites():
    return sorted(Path(__file__).parent.glob("*.yaml"))
