"""Task suites: named groups of tasks whose accuracies are averaged together, declared as YAML data by plugins.

A suite file is ``<name>.yaml`` with ``name`` (equal to the file name), ``description`` and ``tasks`` (task ids).
The built-in plugin declares ``streamgaze``, the ten tasks of the StreamGaze paper; `DEFAULT_SUITE` is the one whose
mean is a run's ``overall``, so a task added by a plugin never moves that number unless a suite says so.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamgaze.errors import SpecError
from streamgaze.plugins import manager

#: The suite whose mean accuracy is ``overall`` in ``streamgaze score`` (when a plugin declares it).
DEFAULT_SUITE = "streamgaze"


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    tasks: tuple[str, ...] = Field(min_length=1)
    source: str = ""


def read_suite(path: Path, source: str = "") -> Suite:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise SpecError(path, None, "a suite file must be a YAML mapping")
    try:
        suite = Suite.model_validate({**data, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SpecError(path, ".".join(str(p) for p in err["loc"]) or None, err["msg"]) from None
    if suite.name != Path(path).stem:
        raise SpecError(path, "name", f"{suite.name!r} must equal the file name {Path(path).stem!r}")
    if len(set(suite.tasks)) != len(suite.tasks):
        raise SpecError(path, "tasks", "a task is listed twice")
    return suite


@lru_cache(maxsize=1)
def registered_suites() -> dict[str, Suite]:
    """Every suite the plugins declare, by name; a name declared twice is an error naming both plugins."""
    suites: dict[str, Suite] = {}
    for source, paths in manager.get_plugins().collect("streamgaze_suites"):
        for path in paths:
            suite = read_suite(Path(path), source.label)
            if suite.name in suites:
                raise SpecError(path, "name", f"suite {suite.name!r} is also declared by {suites[suite.name].source}")
            suites[suite.name] = suite
    return dict(sorted(suites.items()))
