"""What plugins provide, and scaffolds for new ones: the ``tasks`` and ``plugins`` groups."""
from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.plugins import hookspecs
from streamgaze.plugins.manager import GROUP, KINDS, get_plugins
from streamgaze.scaffold import PLUGIN_KINDS, scaffold_plugin, scaffold_task
from streamgaze.tasks.spec import load_task_specs

#: How ``plugins list`` names each kind; a hook not named here is shown by its own name (e.g. a later ``suites``).
KIND_LABELS = {
    "gaze_loaders": "loader",
    "fixation_detectors": "detector",
    "object_labellers": "labeller",
    "models": "model",
    "task_specs": "task",
    "validators": "validator",
    "answer_logic": "answer logic",
}


def _hook_kinds() -> list[tuple[str, str]]:
    """``(label, hook name)`` for every provider hook in the hookspecs, in the order of `KIND_LABELS`."""
    by_hook = {hook: kind for kind, hook in KINDS.items()}
    hooks = sorted(n for n in dir(hookspecs) if n.startswith("streamgaze_") and callable(getattr(hookspecs, n)))
    out = []
    for hook in hooks:
        kind = by_hook.get(hook, hook.removeprefix("streamgaze_"))
        out.append((KIND_LABELS.get(kind, kind), hook))
    order = list(KIND_LABELS.values())
    return sorted(out, key=lambda kh: (order.index(kh[0]) if kh[0] in order else len(order), kh[0]))


def _names(provided) -> list[str]:
    if isinstance(provided, dict):
        return [str(k) for k in provided]
    if isinstance(provided, (list, tuple, set)):  # spec files (task_specs): the task id is the file's stem
        return [Path(p).stem if isinstance(p, (str, Path)) else str(p) for p in provided]
    return [str(provided)]


def plugin_rows() -> list[dict]:
    """One row per registered object of every kind (``status`` ok), then one per broken plugin (``broken``)."""
    plugins = get_plugins()
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}

    def row(kind, name, source_plugin, dist, version, status="ok", problem=None):
        ep = eps.get(source_plugin)
        return {"kind": kind, "name": name, "package": dist, "version": version, "entry_point": source_plugin,
                "module": ep.value if ep is not None else None, "status": status, "problem": problem}

    rows: list[dict] = []
    for label, hook in _hook_kinds():
        impls = getattr(plugins.pm.hook, hook).get_hookimpls()
        found = []
        for impl in impls:
            source = plugins.source_of(impl.plugin)
            try:
                provided = impl.function()
            except Exception as exc:  # a plugin whose hook fails is listed as broken, the others still are
                found.append(row(label, "-", source.plugin, source.distribution, source.version, "broken",
                                 " ".join(f"{hook} failed: {type(exc).__name__}: {exc}".split())))
                continue
            if provided is None:
                continue
            for name in _names(provided):
                found.append(row(label, name, source.plugin, source.distribution, source.version))
        rows.extend(sorted(found, key=lambda r: (r["name"], r["entry_point"])))
    for name, problem in sorted(plugins.broken.items()):
        ep = eps.get(name)
        dist = ep.dist if ep is not None else None
        rows.append(row("-", "-", name, dist.metadata["Name"] if dist else "?", dist.version if dist else "?",
                        "broken", " ".join(str(problem).split())))
    return rows


@click.group()
def tasks() -> None:
    """List registered tasks, or scaffold a new one."""


@tasks.command("list")
def tasks_list() -> None:
    """Every registered task with the plugin that provides it."""
    for task in load_task_specs():
        click.echo(f"{task.id:<42} {task.spec.family:<9} {task.source.label}")
    for name, problem in get_plugins().broken.items():
        click.echo(f"{'(broken plugin) ' + name:<42} {'':<9} {problem}")


@tasks.command("new")
@click.argument("name")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write the new package into.")
def tasks_new(name: str, out_dir: Path) -> None:
    """Scaffold task NAME as a plugin package, OUT/streamgaze-NAME: pyproject.toml (entry point), spec YAML, Jinja
    template, hook module with the answer logic, and a test on the toy store. `pip install -e` the folder, then
    `streamgaze generate --tasks NAME`; `pytest` in the folder runs the test before installing."""
    for path in scaffold_task(name, out_dir):
        click.echo(path)


@click.group("plugins")
def plugins_group() -> None:
    """List every registered plugin, or scaffold a new model, detector, loader or labeller."""


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects (kind, name, package, version, entry_point, module, status, problem).")
def plugins_list(as_json: bool) -> None:
    """Every loader, detector, labeller, model, task, validator and answer logic, with the package that provides
    it; broken plugins with their problem."""
    rows = plugin_rows()
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for line in tables.plugin_lines(rows):
            click.echo(line)


@plugins_group.command("new")
@click.argument("kind", type=click.Choice(PLUGIN_KINDS))
@click.argument("name")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write the new package into.")
def plugins_new(kind: str, name: str, out_dir: Path) -> None:
    """Scaffold a KIND plugin NAME as a package, OUT/streamgaze-NAME: pyproject.toml (entry point), the hook module,
    a README and a test that runs it for real. `pip install -e` the folder; `pytest` in it runs the test first."""
    for path in scaffold_plugin(kind, name, out_dir):
        click.echo(path)


__all__ = ["plugin_rows", "plugins_group", "tasks"]
