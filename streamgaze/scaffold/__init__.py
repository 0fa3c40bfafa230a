"""Scaffolds: ``streamgaze tasks new NAME`` and ``streamgaze plugins new KIND NAME``.

``scaffold_task`` writes ``OUT/streamgaze-<name>/`` with a pyproject (entry point in group ``streamgaze``), the
spec YAML, the Jinja template, the hook module (a `TaskLogic` that already works: "which object is the user
looking at?") and a test that runs the task on the toy timeline. ``docs/writing-a-task.md`` walks through turning it into
a real task.

``scaffold_plugin`` writes the same shape of package for a model, detector, loader or labeller: a pyproject, a
README, the hook module (importing only `streamgaze.plugins.api`) with a plugin that already works, and a test
that runs it for real (the model through the eval runner, the detector through the registry's ``detect``, the
loader into a real store, the labeller on the toy store). The templates are in `streamgaze.scaffold.templates`.
"""
from __future__ import annotations

import re
from pathlib import Path
from string import Template

from streamgaze.errors import StreamGazeError
from streamgaze.scaffold import templates as t

SPEC = """\
# $name: a streamgaze task spec (fields: streamgaze/tasks/spec.py TaskSpec; rules: docs/tasks.md; a walk-through: docs/writing-a-task.md).
id: $name
version: 1
family: past                 # past | present | proactive
ability: object_grounding
description: Which object is the user looking at? (scaffold; replace with your task's question)
template: $name.j2
logic: $name                 # the answer logic registered by plugin.py
ask_at: episode_end          # episode_end | present | first_episode
option_kind: object
max_per_video: 3
cap_policy: earliest
params:
  min_seen: 3
"""

TEMPLATE = "Which object is the user looking at as this clip ends?\n"

PLUGIN = '''\
"""$name: answer logic and hooks. The engine does timing, the causal cut, drawing, lettering and output."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from streamgaze import hookimpl
from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic

HERE = Path(__file__).parent


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_seen: int = Field(3, ge=1, description="names seen by the question time before a question is asked")


class Logic(TaskLogic):
    Params = Params
    context_fields = frozenset()  # variables the template may use besides `options`

    def candidates(self, video, params):
        # List candidates in time order (never decide answers here): one per usable episode.
        for e in video.usable:
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        # `past` is H(time_s): only what happened before the question. Return a Skip or a Draft.
        e = cand.episode
        if len(past.seen_names) < params.min_seen:
            return Skip("too_few_seen")
        return Draft(
            answer=e.gazed,
            pool=sorted(past.seen_names - e.fov_set),  # distractors: seen before, not in view now
            exclude=e.fov_set,                         # X: every other valid answer
            evidence={"episode": e.id},
        )


@hookimpl
def streamgaze_task_specs():
    return [HERE / "$name.yaml"]


@hookimpl
def streamgaze_answer_logic():
    return {"$name": Logic()}
'''

TEST = '''\
"""$name on the toy timeline of tasks.md 0.1 (streamgaze.tasks.testing)."""
import json

from streamgaze.tasks.generate import run_generate
from streamgaze.plugins.manager import Source, get_plugins
from streamgaze.tasks.testing import toy_store

from $package import plugin

TASK = "$name"


def ensure_registered():
    plugins = get_plugins()
    if not plugins.pm.has_plugin(TASK):  # not pip-installed yet: register the module by hand
        plugins.register(plugin, Source(TASK, "local", "-"))


def test_questions_on_the_toy_store(tmp_path):
    ensure_registered()
    toy_store(tmp_path / "toy.duckdb").close()
    report = run_generate(tmp_path / "toy.duckdb", tmp_path / "qa", only=[TASK])
    lines = (tmp_path / "qa" / f"{TASK}.jsonl").read_text().splitlines()
    assert report["tasks"][TASK]["questions"] == len(lines) > 0
    for q in map(json.loads, lines):
        assert len(q["options"]) == 4 and q["options"]["ABCD".index(q["answer"])] == q["answer_text"]
        assert q["clip"][1] == q["time_s"]
'''


def scaffold_task(name: str, out_dir: str | Path = ".") -> list[Path]:
    """Write the package for task ``name`` under ``out_dir``; returns the files written. Never overwrites."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise StreamGazeError(f"task name {name!r}: use lower case letters, digits and _ (a task id), e.g. my_task")
    root, values = _package_root(name, out_dir)
    package = values["package"]
    values.update(kind="task", package_data=f'\n[tool.setuptools.package-data]\n"{package}" = ["*.yaml", "*.j2"]\n')
    files = {
        root / "pyproject.toml": t.PYPROJECT,
        root / "README.md": t.README["task"],
        root / package / "__init__.py": "",
        root / package / "plugin.py": PLUGIN,
        root / package / f"{name}.yaml": SPEC,
        root / package / f"{name}.j2": TEMPLATE,
        root / "tests" / f"test_{name}.py": TEST,
    }
    return _write(files, values)


def _package_root(name: str, out_dir) -> tuple[Path, dict]:
    dist = "streamgaze-" + name.replace("_", "-")
    package = "streamgaze_" + name
    root = Path(out_dir) / dist
    if root.exists():
        raise StreamGazeError(f"{root}: already exists; choose another --out or NAME")
    return root, {"name": name, "dist": dist, "package": package}


def _write(files: dict[Path, str], values: dict) -> list[Path]:
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    return list(files)


#: ``plugins new KIND``: the kinds with a scaffold.
PLUGIN_KINDS = ("model", "detector", "loader", "labeller")


def scaffold_plugin(kind: str, name: str, out_dir: str | Path = ".") -> list[Path]:
    """Write the package for a ``kind`` plugin named ``name`` under ``out_dir``; returns the files written.
    Never overwrites."""
    if kind not in PLUGIN_KINDS:
        raise StreamGazeError(f"unknown plugin kind {kind!r}; choose one of {', '.join(PLUGIN_KINDS)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise StreamGazeError(f"{kind} name {name!r}: use lower case letters, digits and _, e.g. my_{kind}")
    root, values = _package_root(name, out_dir)
    values.update(kind=kind, package_data="")
    package = values["package"]
    files = {
        root / "pyproject.toml": t.PYPROJECT,
        root / "README.md": t.README[kind],
        root / package / "__init__.py": "",
        root / package / "plugin.py": t.PLUGIN[kind],
        root / "tests" / f"test_{name}.py": t.TEST[kind],
    }
    return _write(files, values)
