"""What plugins provide, and scaffolds for new ones: the ``tasks`` and ``plugins`` groups."""
from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import click

from streamgaze.cli import tables
from streamgaze.plugins import hookspecs
from streamgaze.plugins.manager import GROUP, KINDS, PATH_HOOKS, Source, debug, get_plugins
from streamgaze.scaffold import PLUGIN_KINDS, scaffold_plugin, scaffold_task
from streamgaze.tasks.spec import load_task_specs, spec_key

#: How ``plugins list`` names each kind; a hook not named here is shown by its own name (e.g. a later ``suites``).
KIND_LABELS = {
    "gaze_loaders": "loader",
    "fixation_detectors": "detector",
    "object_labellers": "labeller",
    "models": "model",
    "task_specs": "task",
    "validators": "validator",
    "answer_logic": "answer logic",
    "suites": "suite",
    "dataset_recipes": "dataset",
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


def _names(hook: str, provided) -> list[str]:
    if hook in PATH_HOOKS:  # spec and suite files: named by the task or suite they are for
        return [spec_key(Path(p)) for p in provided]
    return [str(k) for k in provided]


def plugin_rows() -> list[dict]:
    """One row per registered object of every kind (``status`` ok), then one per broken plugin (``broken``)."""
    plugins = get_plugins()
    plugins.check_all()

    def row(kind, name, source, status="ok", problem=None):
        return {"kind": kind, "name": name, "package": source.distribution, "version": source.version,
                "entry_point": source.plugin, "module": source.module or None, "status": status, "problem": problem}

    rows: list[dict] = []
    for label, hook in _hook_kinds():
        found = [row(label, name, source) for source, provided in plugins.collect(hook) for name in _names(hook, provided)]
        rows.extend(sorted(found, key=lambda r: (r["name"], r["entry_point"])))
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    for name, problem in sorted(plugins.broken.items()):
        dist = eps[name].dist if name in eps else None
        source = Source(name, dist.metadata["Name"] if dist else "?", dist.version if dist else "?",
                        eps[name].value if name in eps else "")
        rows.append(row("-", "-", source, "broken", problem))
    return rows


@click.group()
def tasks() -> None:
    """List registered tasks, or scaffold a new one."""


@tasks.command("list")
def tasks_list() -> None:
    """Every registered task with the plugin that provides it; broken tasks and plugins with their problem."""
    get_plugins().check_all()
    broken: dict[str, str] = {}
    for task in load_task_specs(on_broken=broken.__setitem__):
        click.echo(f"{task.id:<42} {task.spec.family:<9} {task.source.label}")
    for task_id, problem in broken.items():
        click.echo(f"{'(broken task) ' + task_id:<42} {'':<9} {problem}")
    for name, problem in get_plugins().broken.items():
        click.echo(f"{'(broken plugin) ' + name:<42} {'':<9} {problem}")
    _debug_tracebacks()


def _debug_tracebacks() -> None:
    """With ``STREAMGAZE_DEBUG=1``, each broken plugin's traceback (file and line) on stderr."""
    if debug():
        for text in get_plugins().tracebacks.values():
            click.echo(text, err=True, nl=False)


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
    _debug_tracebacks()


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
