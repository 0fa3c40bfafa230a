"""The ten built-in StreamGaze tasks, one folder each, registered by this one module (entry point
``builtin_tasks``).

A task folder ``tasks/<task_id>/`` holds:

- ``task.yaml``: the spec (its ``id`` is the folder's name; ``template: question.j2``),
- ``question.j2``: the question template, beside the spec,
- ``logic.py``: the answer logic, exposed as a module-level ``LOGIC = {"<logic name>": <TaskLogic instance>}``
  (the spec's ``logic:`` names one of its keys).

Every folder holding a ``task.yaml`` is a task: `streamgaze_task_specs` returns their specs and
`streamgaze_answer_logic` merges the ``LOGIC`` of their ``logic.py`` modules (a logic name given by two folders is
an error naming both). Adding a built-in task is adding a folder; nothing here or in ``pyproject.toml`` changes.
"""
from __future__ import annotations

from importlib import import_module
from pathlib import Path

from streamgaze import hookimpl

SPEC = "task.yaml"
HERE = Path(__file__).parent


def task_folders() -> list[Path]:
    """The task folders, sorted by name: the folders here holding a ``task.yaml``."""
    return sorted(p for p in HERE.iterdir() if (p / SPEC).is_file())


@hookimpl
def streamgaze_task_specs():
    return [folder / SPEC for folder in task_folders()]


@hookimpl
def streamgaze_answer_logic():
    merged: dict = {}
    owner: dict[str, str] = {}
    for folder in task_folders():
        logic = import_module(f"{__name__}.{folder.name}.logic")
        for name, obj in logic.LOGIC.items():
            if name in owner:
                raise ValueError(f"answer logic {name!r} is given by both tasks/{owner[name]} and tasks/{folder.name}")
            merged[name], owner[name] = obj, folder.name
    return merged
