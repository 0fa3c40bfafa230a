"""The command line's shape: lazy command modules, errors as one `Error:` line, `plugins list`, `--model` names,
`EvalConfig` checks, and click / rich tables kept inside streamgaze/cli."""
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streamgaze import hookimpl
from streamgaze.cli import COMMANDS, cli
from streamgaze.errors import InputError, StreamGazeError
from streamgaze.eval.config import EvalConfig
from streamgaze.plugins.manager import Source, get_plugins

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "STREAMGAZE_PROGRESS": "0", "STREAMGAZE_STRICT_PLUGINS": "1"}
STAGES = ("streamgaze.eval", "streamgaze.gaze", "streamgaze.tasks", "streamgaze.objects", "streamgaze.review",
          "streamgaze.demo", "streamgaze.llm", "streamgaze.cli.")


def test_help_lists_every_command_without_importing_any_command_module():
    code = ("import sys\nfrom streamgaze.cli import cli\ntry:\n    cli.main(['--help'], prog_name='streamgaze')\n"
            "except SystemExit:\n    pass\nprint('MODULES', ' '.join(sorted(sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    help_text, modules = res.stdout.split("MODULES ")
    loaded = [m for m in modules.split() if m.startswith(STAGES)]
    assert loaded == [] and "streamgaze_builtin" not in modules.split()
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)}\s+\S", help_text, re.M), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_stored_short_help_is_the_commands_own(name):
    command = cli.get_command(click.Context(cli), name)
    assert command.name == name
    assert click.Command(name, help=COMMANDS[name][1]).get_short_help_str(200) == command.get_short_help_str(200)


def test_every_command_shows_its_help():
    for name in COMMANDS:
        res = CliRunner().invoke(cli, [name, "--help"])
        assert res.exit_code == 0 and "Usage:" in res.output, (name, res.output)


def test_errors_are_plain_exceptions_shown_as_one_line_with_exit_code_2(tmp_path):
    err = InputError(tmp_path / "x.csv", "bad\nthing", row=3)
    assert not isinstance(err, click.ClickException) and isinstance(err, Exception)
    assert err.exit_code == 2 and err.message == str(err) == f"{tmp_path / 'x.csv'}: row 3: bad thing"
    res = subprocess.run([sys.executable, "-m", "streamgaze.cli", "ingest", "generic-csv", str(tmp_path / "nope.csv"),
                          "--store", str(tmp_path / "s.duckdb")], env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("Error: ") and res.stderr.count("\n") == 1 and "nope.csv" in res.stderr


def test_a_nested_command_error_is_one_line_too(tmp_path):
    res = CliRunner().invoke(cli, ["tasks", "new", "Bad-Name", "--out", str(tmp_path)])
    assert res.exit_code == 2 and res.output.startswith("Error: ") and "lower case" in res.output


class FakeModel:
    uses_frames = False
    uses_prompt = False

    def __init__(self, spec, options):
        pass

    async def ask(self, request):
        return "A"


@pytest.fixture
def plugin_model():
    """A third-party model plugin registered in-process for the test, unregistered after it."""
    module = types.ModuleType("fake_model_plugin")
    module.streamgaze_models = hookimpl(lambda: {"fake-model": FakeModel})
    plugins = get_plugins()
    plugins.register(module, Source("fake_model_plugin", "streamgaze-fake", "9.9"))
    yield module
    plugins.pm.unregister(module)
    plugins.sources.pop(id(module), None)


def test_unknown_model_lists_plugin_models_too(plugin_model, tmp_path):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "t.jsonl").write_text(json.dumps({
        "id": "q", "task": "t", "video_id": "v", "question": "?", "options": ["a", "b"], "answer": "A", "clip": [0, 1]}) + "\n")
    res = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "nope", "--out", str(tmp_path / "R")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "fake-model (streamgaze-fake)" in res.output
    for name in ("fake-model", "random", "first-option", "openai:<model>", "text-only:<model>", "plugins list"):
        assert name in res.output, name
    ok = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "fake-model", "--out", str(tmp_path / "R")])
    assert ok.exit_code == 0 and "asked 1 (correct 1)" in ok.output


def test_eval_help_names_the_model_forms():
    out = CliRunner().invoke(cli, ["eval", "--help"]).output
    assert "first-option" in out and "openai:<model>" in out and "plugins list" in out


def test_plugins_list_shows_every_kind_with_its_package(plugin_model):
    res = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    kinds = {r["kind"] for r in rows}
    assert {"loader", "detector", "labeller", "model", "task", "validator", "answer logic"} <= kinds
    row = next(r for r in rows if r["name"] == "fake-model")
    assert (row["kind"], row["package"], row["version"], row["entry_point"], row["status"]) == \
        ("model", "streamgaze-fake", "9.9", "fake_model_plugin", "ok")
    ivt = next(r for r in rows if r["kind"] == "detector" and r["name"] == "ivt")
    assert ivt["package"] == "streamgaze" and ivt["module"] == "streamgaze_builtin.detectors"
    assert sum(r["kind"] == "task" for r in rows) >= 10
    text = CliRunner().invoke(cli, ["plugins", "list"]).output.splitlines()
    assert text[0].split() == ["KIND", "NAME", "PACKAGE", "VERSION", "ENTRY", "POINT"]
    assert any(line.split()[:4] == ["model", "fake-model", "streamgaze-fake", "9.9"] for line in text)


def test_plugins_list_marks_broken_plugins(monkeypatch):
    monkeypatch.setitem(get_plugins().broken, "half_done", "ImportError: no module named 'x'")
    rows = json.loads(CliRunner().invoke(cli, ["plugins", "list", "--json"]).output)
    broken = [r for r in rows if r["status"] == "broken"]
    assert [(r["entry_point"], r["problem"]) for r in broken] == [("half_done", "ImportError: no module named 'x'")]
    text = CliRunner().invoke(cli, ["plugins", "list"]).output
    assert re.search(r"half_done\s+BROKEN: ImportError: no module named 'x'$", text, re.M)


@pytest.mark.parametrize("field,value,message", [
    ("concurrency", 0, "concurrency must be an integer >= 1, got 0"),
    ("frames", 0, "frames must be an integer >= 1, got 0"),
    ("retries", -1, "retries must be an integer >= 0, got -1"),
    ("timeout_s", 0, "timeout_s must be a number > 0, got 0"),
    ("gaze_prompt", "x", "unknown gaze prompt 'x'"),
])
def test_eval_config_checks_values(field, value, message, tmp_path):
    with pytest.raises(StreamGazeError) as err:
        EvalConfig("random", tmp_path, **{field: value})
    assert message in err.value.message
    cfg = EvalConfig("random", str(tmp_path))
    assert cfg.out_dir == tmp_path and cfg.concurrency == 8
    with pytest.raises(Exception):
        cfg.frames = 3  # frozen


def test_eval_rejects_zero_concurrency_on_the_command_line(tmp_path):
    (tmp_path / "qa").mkdir()
    res = CliRunner().invoke(cli, ["eval", "--qa", str(tmp_path / "qa"), "--model", "random", "--out", str(tmp_path / "R"),
                                   "--concurrency", "0"])
    assert res.exit_code == 2 and res.output == "Error: Invalid value for '--concurrency': 0 is not in the range x>=1.\n"


def test_only_the_cli_imports_click_or_builds_rich_tables():
    offenders = []
    for path in sorted((ROOT / "streamgaze").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("streamgaze/cli/"):
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(import click|from click\b)", text, re.M) or "rich.table" in text or re.search(r"(?<![\w.])Table\(", text):  # a bare Table( is rich's; wandb.Table is not
            offenders.append(rel)
    assert offenders == []
