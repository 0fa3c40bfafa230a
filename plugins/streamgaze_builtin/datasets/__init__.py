"""The built-in dataset recipes for ``streamgaze ingest-dataset``: every ``*.yaml`` in this folder (the schema is
``streamgaze.gaze.datasets.recipes.Recipe``; docs/datasets.md describes each dataset)."""
from __future__ import annotations

from pathlib import Path

from streamgaze.plugins.api import hookimpl


@hookimpl
def streamgaze_dataset_recipes():
    return sorted(Path(__file__).parent.glob("*.yaml"))
