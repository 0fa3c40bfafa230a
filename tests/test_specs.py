"""Task specs and templates fail at load time with the file, the field and the reason; plugins are named in errors."""
import textwrap

import pytest
from click.testing import CliRunner

from streamgaze import hookimpl, load_task_specs
from streamgaze.cli import cli
from streamgaze.tasks.api import Candidate, Draft, TaskLogic
from streamgaze.tasks.generate import run_generate
from streamgaze.errors import PluginError, SpecError
from streamgaze.plugins.manager import Source, get_plugins
from streamgaze.tasks.testing import toy_store

GOOD = """\
id: {id}
family: present
ability: object_grounding
template: {id}.j2
logic: gazed_among_visible
ask_at: present
"""


def write_spec(tmp_path, yaml_text, template="What is this?", task_id="my_task"):
    (tmp_path / f"{task_id}.yaml").write_text(textwrap.dedent(yaml_text))
    (tmp_path / f"{task_id}.j2").write_text(template)
    return tmp_path / f"{task_id}.yaml"


def test_a_good_local_spec_loads_beside_the_builtins(tmp_path):
    write_spec(tmp_path, GOOD.format(id="my_task"))
    ids = [t.id for t in load_task_specs(extra_paths=[tmp_path])]
    assert "my_task" in ids and "present_object_identification_hard" in ids


@pytest.mark.parametrize(
    "yaml_text, template, message",
    [
        pytest.param(GOOD.format(id="my_task").replace("family: present", "family: future"), "x",
                     "my_task.yaml: family: Input should be 'past', 'present' or 'proactive'", id="bad_family"),
        pytest.param(GOOD.format(id="my_task").replace("ability: object_grounding\n", ""), "x",
                     "my_task.yaml: ability: Field required", id="missing_field"),
        pytest.param(GOOD.format(id="my_task") + "colour: red\n", "x",
                     "my_task.yaml: colour: Extra inputs are not permitted", id="unknown_key"),
        pytest.param(GOOD.format(id="my_task") + "max_per_video: 0\n", "x",
                     "my_task.yaml: max_per_video: Input should be greater than or equal to 1", id="bad_value"),
        pytest.param(GOOD.format(id="other_id"), "x", "my_task.yaml: id: 'other_id' must equal the file name", id="id_not_file"),
        pytest.param(GOOD.format(id="my_task").replace("gazed_among_visible", "no_such_logic"), "x",
                     "my_task.yaml: logic: no answer logic 'no_such_logic' is registered", id="unknown_logic"),
        pytest.param(GOOD.format(id="my_task") + "params: {x: 1}\n", "x",
                     "my_task.yaml: params.x: Extra inputs are not permitted", id="unknown_param"),
        pytest.param("id: my_task\nfamily: [unclosed\nability: x\n", "x", "my_task.yaml:3: invalid YAML", id="bad_yaml"),
        pytest.param(GOOD.format(id="my_task") + "family: present\n", "x",
                     "invalid YAML: key 'family' appears twice", id="duplicate_key"),
        pytest.param(GOOD.format(id="my_task"), "What is {{ colour }}?",
                     "my_task.j2: template: unknown variable(s) colour", id="undefined_variable"),
        pytest.param(GOOD.format(id="my_task"), "Among {options}, which?",
                     "my_task.j2:1: template: {options} has single braces", id="single_brace"),
        pytest.param(GOOD.format(id="my_task"), "What {% if %}", "my_task.j2:1: template syntax error", id="bad_jinja"),
    ],
)
def test_bad_specs_are_rejected_with_file_field_and_reason(tmp_path, yaml_text, template, message):
    write_spec(tmp_path, yaml_text, template)
    with pytest.raises(SpecError) as err:
        load_task_specs(extra_paths=[tmp_path])
    assert message in err.value.message
    assert "\n" not in err.value.message and err.value.exit_code == 2


def test_a_task_folder_spec_is_named_task_yaml_and_its_id_is_the_folder_name(tmp_path):
    folder = tmp_path / "my_task"
    folder.mkdir()
    (folder / "task.yaml").write_text(GOOD.format(id="my_task").replace("my_task.j2", "question.j2"))
    (folder / "question.j2").write_text("What is this?")
    assert "my_task" in [t.id for t in load_task_specs(extra_paths=[folder])]
    (folder / "task.yaml").write_text(GOOD.format(id="other_id").replace("other_id.j2", "question.j2"))
    with pytest.raises(SpecError, match=r"task\.yaml: id: 'other_id' must equal the folder name 'my_task'"):
        load_task_specs(extra_paths=[folder])


def test_a_duplicate_task_id_names_both_sources(tmp_path):
    write_spec(tmp_path, GOOD.format(id="present_object_identification_hard"), task_id="present_object_identification_hard")
    with pytest.raises(SpecError, match="also provided by 'builtin_tasks'"):
        load_task_specs(extra_paths=[tmp_path])


def test_missing_variable_at_render_time_is_an_error_naming_task_and_file(tmp_path):
    write_spec(tmp_path, GOOD.format(id="my_task"), template="Pick {{ options[9] }}")
    toy_store(tmp_path / "s.duckdb").close()
    with pytest.raises(SpecError, match=r"my_task\.j2: task my_task \(video toy_kitchen"):
        run_generate(tmp_path / "s.duckdb", tmp_path / "qa", only=["my_task"], extra_specs=[tmp_path])
    assert not (tmp_path / "qa").exists()


class _Exploding(TaskLogic):
    def candidates(self, video, params):
        yield Candidate("e1", episode=video.episodes[0])

    def build(self, cand, past, params, rng, *, video):
        raise ZeroDivisionError("boom")


class _ExplodingPlugin:
    @hookimpl
    def streamgaze_answer_logic(self):
        return {"exploding": _Exploding()}


@pytest.fixture
def exploding_plugin():
    plugins = get_plugins()
    plugin = _ExplodingPlugin()
    plugins.register(plugin, Source("test_exploding", "tests", "0"))
    yield
    plugins.pm.unregister(plugin)


def test_an_exception_inside_a_plugin_names_the_plugin_and_the_task(tmp_path, exploding_plugin):
    write_spec(tmp_path, GOOD.format(id="my_task").replace("gazed_among_visible", "exploding"))
    toy_store(tmp_path / "s.duckdb").close()
    with pytest.raises(PluginError) as err:
        run_generate(tmp_path / "s.duckdb", tmp_path / "qa", only=["my_task"], extra_specs=[tmp_path])
    assert "task my_task" in err.value.message and "ZeroDivisionError: boom" in err.value.message


def test_builtins_arrive_through_the_entry_point_group():
    tasks = [t for t in load_task_specs() if t.source.distribution == "streamgaze"]
    assert len(tasks) == 10
    for task in tasks:  # one entry point for every task folder
        assert task.source.plugin == "builtin_tasks"
        assert (task.path.name, task.path.parent.name) == ("task.yaml", task.id)


def test_tasks_list_shows_each_task_and_its_plugin():
    result = CliRunner().invoke(cli, ["tasks", "list"])
    assert result.exit_code == 0, result.output
    assert "present_object_identification_hard" in result.output and "built-in" in result.output


def test_cli_spec_error_is_one_line_exit_2(tmp_path):
    write_spec(tmp_path, GOOD.format(id="my_task"), template="{{ nope }}")
    toy_store(tmp_path / "s.duckdb").close()
    result = CliRunner().invoke(cli, ["generate", "--store", str(tmp_path / "s.duckdb"), "--specs", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "unknown variable(s) nope" in result.output
