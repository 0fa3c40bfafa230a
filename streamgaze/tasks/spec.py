"""Task specs: a YAML file per task, validated by a pydantic model, with its Jinja template beside it.

Specs come from plugins (`streamgaze_task_specs`) and name their answer logic by registered name
(`streamgaze_answer_logic`). A bad spec fails at load time with the file, the field and the reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, get_args

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamgaze.errors import PluginError, SpecError
from streamgaze.plugins import manager as plugins
from streamgaze.tasks.api import TaskLogic
from streamgaze.tasks.templates import load_template

Family = Literal["past", "present", "proactive"]
FAMILIES = get_args(Family)
# Engine timing a task's logic may read: a logic whose Params declare one of these gets the spec's value.
ENGINE_TIMING = ("present_offset_s", "present_window_s")


class ReleaseNames(BaseModel):
    """How the task is named in the released StreamGaze JSON files (``export streamgaze-json``, released files read
    by ``eval``); ``required_ability`` there is the spec's ``ability``."""

    model_config = ConfigDict(extra="forbid")

    task_type: str = Field(min_length=1)


class TaskSpec(BaseModel):
    """The YAML of one task. ``params`` are the task's own parameters (validated by its logic's ``Params``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(1, ge=1)
    family: Family
    ability: str
    release: ReleaseNames | None = None
    description: str = ""
    template: str
    logic: str
    ask_at: Literal["episode_end", "present", "first_episode"] = Field(
        description="question time: the decisive episode's end; min(end, start + present_offset_s); "
        "or the start of the video's first usable episode"
    )
    option_kind: Literal["object", "attribute", "label", "sequence", "none"] = "object"
    max_per_video: int | None = Field(None, ge=1)
    cap_policy: Literal["earliest", "select", "select_candidates"] = Field(
        "earliest",
        description="which questions a per-video cap keeps: the earliest; a seeded pick among the questions made; "
        "or a seeded pick among the candidates that pass the logic's screen, made before building (cheaper)",
    )
    present_offset_s: float = Field(1.0, ge=0)
    present_window_s: float = Field(60.0, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    validators: list[str] = Field(default_factory=list)
    alert_clause: str | None = Field(
        None, description="proactive tasks: how the eval's windowed yes/no prompt names the event, with {target} "
        "(default: 'the {target} was visible')",
    )


@dataclass(frozen=True)
class LoadedTask:
    spec: TaskSpec
    path: Path
    template: jinja2.Template
    logic: TaskLogic
    params: BaseModel
    source: plugins.Source
    validators: tuple = ()  # the spec's `validators:`, resolved: callables item -> drop reason or None

    @property
    def id(self) -> str:
        return self.spec.id


def _field_error(path: Path, exc: ValidationError, prefix: str = "") -> SpecError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return SpecError(path, prefix + loc, err["msg"])


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error: PyYAML keeps the last one
    silently, so a spec that sets a param and later lists it again with its default would lose the setting."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_spec(path: Path) -> TaskSpec:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as exc:
        raise SpecError(path, None, f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(where, None, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise SpecError(path, None, "a task spec must be a YAML mapping")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise _field_error(path, exc) from None
    # a task folder's spec is named task.yaml (its id is the folder's name); any other spec is <id>.yaml
    folder = path.name == "task.yaml"
    expected = path.parent.name if folder else path.stem
    if spec.id != expected:
        raise SpecError(path, "id", f"{spec.id!r} must equal the {'folder' if folder else 'file'} name {expected!r}")
    return spec


def load_spec(path: Path, source: plugins.Source, logics: dict[str, plugins.Entry]) -> LoadedTask:
    spec = read_spec(path)
    if spec.logic not in logics:
        raise SpecError(path, "logic", f"no answer logic {spec.logic!r} is registered; available: {', '.join(logics) or 'none'}")
    logic = logics[spec.logic].obj
    shared = {k: getattr(spec, k) for k in ENGINE_TIMING if k in logic.Params.model_fields}
    for k in shared:
        if k in spec.params:
            raise SpecError(path, f"params.{k}", f"set {k} at the top level of the spec; the engine owns it")
    try:
        params = logic.Params.model_validate({**spec.params, **shared})
    except ValidationError as exc:
        raise _field_error(path, exc, "params.") from None
    template = load_template(path, spec.template, frozenset(logic.context_fields))
    validators = []
    if spec.validators:
        registered = plugins.registry("validators")
        for i, name in enumerate(spec.validators):
            if name not in registered:
                raise SpecError(path, f"validators.{i}", f"no validator {name!r} is registered; available: {', '.join(registered) or 'none'}")
            validators.append(registered[name].obj)
    return LoadedTask(spec, path, template, logic, params, source, tuple(validators))


def spec_key(path: Path) -> str:
    """The task id a spec file is for, from its name alone (``<id>/task.yaml`` or ``<id>.yaml``)."""
    return path.parent.name if path.name == "task.yaml" else path.stem


def load_task_specs(only: list[str] | None = None, extra_paths: list[Path] | None = None,
                    on_broken: Callable[[str, str], None] | None = None) -> list[LoadedTask]:
    """Every registered task (plus specs in ``extra_paths``), sorted by id; ``only`` selects ids.

    A registered task whose spec, template, logic or plugin is broken is left out and reported once through
    ``on_broken(task_id, one-line problem)`` (default: a warning), so the other tasks still run; asking for it by id
    is an error that says why. ``STREAMGAZE_STRICT_PLUGINS=1`` makes any broken task fatal. Specs given in
    ``extra_paths`` (``generate --specs``, a task being written) always fail loudly."""
    plg = plugins.get_plugins()
    logics = plg.registry("answer_logic")
    found: list[tuple[Path, plugins.Source, bool]] = []
    for source, paths in plg.collect("streamgaze_task_specs"):
        found += [(Path(p), source, False) for p in paths]
    for extra in extra_paths or []:
        extra = Path(extra)
        files = sorted(extra.glob("*.yaml")) if extra.is_dir() else [extra]
        found += [(f, plugins.Source(str(extra), "local", "-"), True) for f in files]
    tasks: dict[str, LoadedTask] = {}
    broken: dict[str, str] = {}
    for path, source, loud in found:
        try:
            try:
                task = load_spec(path, source, logics)
            except SpecError:
                raise
            except Exception as exc:
                raise PluginError(source.plugin, f"loading spec {path}", exc, source=source) from exc
            if task.id in tasks:
                other = tasks[task.id]
                raise SpecError(path, "id", f"task {task.id!r} is also provided by {other.source.plugin!r} ({other.path})")
        except (SpecError, PluginError) as exc:
            if loud or plugins.strict():
                raise
            broken[spec_key(path)] = str(exc)
            continue
        tasks[task.id] = task
    if only:
        asked_broken = [t for t in only if t in broken and t not in tasks]
        if asked_broken:
            raise SpecError("--tasks", None, f"task {asked_broken[0]!r} is broken: {broken[asked_broken[0]]}")
        missing = [t for t in only if t not in tasks]
        if missing:
            raise SpecError("--tasks", None, f"unknown task(s) {', '.join(missing)}; available: "
                            f"{', '.join(sorted(tasks))}{plg.broken_note()}")
        return [tasks[t] for t in sorted(only)]
    report = on_broken or (lambda key, problem: warnings.warn(f"task {key!r} left out: {problem}", stacklevel=3))
    for key, problem in sorted(broken.items()):
        report(key, problem)
    return [tasks[t] for t in sorted(tasks)]


@lru_cache(maxsize=1)
def _registered_specs() -> dict[str, TaskSpec]:
    """The YAML of every registered task, read without loading logics or templates (cheap metadata lookups);
    a spec that cannot be read is left out here and reported by `load_task_specs`."""
    specs: dict[str, TaskSpec] = {}
    for _source, paths in plugins.get_plugins().collect("streamgaze_task_specs"):
        for path in paths:
            try:
                spec = read_spec(Path(path))
            except SpecError:
                continue
            specs.setdefault(spec.id, spec)
    return specs


def registered_spec(task_id: str) -> TaskSpec | None:
    return _registered_specs().get(task_id)


def family_of(task_id: str) -> str:
    """A task's family: its spec's, else the id's first word when that is a family name (a released file of a
    task no plugin registers), else ``other``."""
    spec = registered_spec(task_id)
    if spec is not None:
        return spec.family
    head = task_id.split("_", 1)[0]
    return head if head in FAMILIES else "other"


def release_task_type(spec: TaskSpec) -> str:
    """The ``task_type`` a task's questions carry in released files: the spec's, else its id."""
    return spec.release.task_type if spec.release else spec.id


def task_of_release_type(task_type: str) -> str | None:
    """The registered task a released ``task_type`` belongs to; where two tasks share one (OI-E and OI-H are both
    ``Object_Identification``), the first id in sorted order."""
    for task_id, spec in sorted(_registered_specs().items()):
        if release_task_type(spec) == task_type:
            return task_id
    return None
