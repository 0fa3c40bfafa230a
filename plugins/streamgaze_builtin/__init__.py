"""The built-in streamgaze plugins: ten StreamGaze tasks, loaders, detectors, labellers and models.

Each module registers through the ``streamgaze`` entry-point group, exactly as a third-party package would.
"""
from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def spec_path(task_id: str) -> Path:
    """The shipped YAML spec of a built-in task (the template sits beside it)."""
    with as_file(files("streamgaze_builtin.task_specs").joinpath(f"{task_id}.yaml")) as path:
        return Path(path)
