"""A broken plugin costs one line and only the commands that need it: each case is a real installed distribution
(a ``*.dist-info`` with an entry point in the ``streamgaze`` group, on PYTHONPATH) driven through the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamgaze.tasks.testing import toy_store

GOOD_LOGIC = '''
from streamgaze.plugins.api import Candidate, Draft, Skip, TaskLogic, hookimpl


class Longest(TaskLogic):
    def candidates(self, video, params):
        for e in video.usable:
            yield Candidate(e.id, episode=e)

    def build(self, cand, past, params, rng, *, video):
        return Draft(answer=cand.episode.gazed, pool=sorted({e.gazed for e in past.usable}))
'''
SPEC = """id: {task}
version: 1
family: past
ability: scanpath_reasoning
template: {task}.j2
logic: {logic}
ask_at: episode_end
"""


def install(site: Path, dist: str, module: str, source: str, files: dict[str, str] | None = None) -> None:
    """A distribution ``dist`` whose entry point ``dist`` loads ``module`` (written from ``source``)."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[streamgaze]\n{dist} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    for name, text in (files or {}).items():
        (site / name).write_text(text)


def task_plugin(site: Path, dist: str, task: str, logic_src: str, spec: str | None = None) -> None:
    source = logic_src + f'''
from pathlib import Path


@hookimpl
def streamgaze_task_specs():
    return [Path(__file__).parent / "{task}.yaml"]


@hookimpl
def streamgaze_answer_logic():
    return {{"{task}_logic": Longest()}}
'''
    spec = spec if spec is not None else SPEC.format(task=task, logic=f"{task}_logic")
    install(site, dist, f"{dist}_plugin", source, {f"{task}.yaml": spec, f"{task}.j2": "Which one?"})


def cli(site: Path, *args: str, strict: bool = False, debug: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("STREAMGAZE_STRICT_PLUGINS", "STREAMGAZE_DEBUG")}
    env.update(PYTHONPATH=str(site), STREAMGAZE_PROGRESS="0")
    if strict:
        env["STREAMGAZE_STRICT_PLUGINS"] = "1"
    if debug:
        env["STREAMGAZE_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-m", "streamgaze.cli", *args], env=env, capture_output=True, text=True)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def toy_store_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.duckdb"
    toy_store(path).close()
    return path


@pytest.fixture
def site(tmp_path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def test_a_misspelt_hook_name_costs_one_line_and_the_rest_works(site, tmp_path):
    install(site, "typo_pkg", "typo_pkg_plugin", """
        from streamgaze.plugins.api import hookimpl

        @hookimpl
        def streamgaze_answer_logics():
            return {}
    """)
    listed = cli(site, "tasks", "list")
    assert listed.returncode == 0, listed.stderr
    assert sum(line.startswith(("past_", "present_", "proactive_")) for line in listed.stdout.splitlines()) == 10
    broken = [line for line in listed.stdout.splitlines() if "typo_pkg" in line]
    assert len(broken) == 1 and "unknown hook 'streamgaze_answer_logics'" in broken[0]
    assert "did you mean 'streamgaze_answer_logic'" in broken[0] and "package typo_pkg 0.1" in broken[0]
    assert "Traceback" not in listed.stdout + listed.stderr
    assert "typo_pkg_plugin.py:" in broken[0]
    hard = cli(site, "tasks", "list", strict=True)
    assert "typo_pkg" in one_error_line(hard)


def test_a_plugin_that_fails_to_import_is_named_when_its_task_is_asked_for(site, tmp_path):
    install(site, "noimport_pkg", "noimport_pkg_plugin", "import not_a_module_anywhere\n")
    store = toy_store_file(tmp_path)
    traced = cli(site, "plugins", "list", debug=True)
    assert "Traceback" in traced.stderr and "noimport_pkg_plugin.py\", line 1" in traced.stderr
    ok = cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa"), "--tasks", "past_scene_recall")
    assert ok.returncode == 0, ok.stderr
    line = one_error_line(cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa2"),
                              "--tasks", "past_longest_look"))
    assert "unknown task(s) past_longest_look" in line and "noimport_pkg" in line
    assert not (tmp_path / "qa2").exists()


def test_a_malformed_spec_leaves_out_only_its_task(site, tmp_path):
    task_plugin(site, "badspec_pkg", "past_bad_spec", GOOD_LOGIC,
                spec=SPEC.format(task="past_bad_spec", logic="past_bad_spec_logic") + "ask_at: whenever\n")
    store = toy_store_file(tmp_path)
    result = cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa"))
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "qa").glob("*.jsonl"))) == 10
    assert "left out task past_bad_spec" in result.stderr and "past_bad_spec.yaml" in result.stderr
    line = one_error_line(cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa2"),
                              "--tasks", "past_bad_spec"))
    assert "task 'past_bad_spec' is broken" in line and "ask_at" in line
    listed = cli(site, "tasks", "list")
    assert any(line.startswith("(broken task) past_bad_spec") for line in listed.stdout.splitlines())


def test_a_provider_returning_the_wrong_type_is_broken_not_fatal(site):
    install(site, "wrongtype_pkg", "wrongtype_pkg_plugin", """
        from streamgaze.plugins.api import hookimpl

        @hookimpl
        def streamgaze_models():
            return ["not", "a", "dict"]
    """)
    listed = cli(site, "formats")
    assert listed.returncode == 0, listed.stderr
    qa = site / "qa"
    qa.mkdir()
    (qa / "past_x.jsonl").write_text('{"id": "q1", "task": "past_x", "family": "past", "video_id": "v", "question": "?", '
                                     '"options": ["a", "b"], "answer": "A", "answer_text": "a", "time_s": 1.0, '
                                     '"clip": [0.0, 1.0], "evidence": {}}\n')
    line = one_error_line(cli(site, "eval", "--qa", str(qa), "--model", "mine:x", "--out", str(site / "r")))
    assert "unknown model" in line and "wrongtype_pkg" in line
    assert "streamgaze_models returned list, not a dict" in cli(site, "tasks", "list").stdout


@pytest.mark.parametrize("bad, expected", [
    ("return None", "build() returned NoneType, not a Draft or a Skip"),
    ("return Draft(answer=cand.episode.gazed, pool=[]) if False else 42", "build() returned int"),
])
def test_a_logic_returning_something_else_is_one_line_naming_plugin_and_file(site, tmp_path, bad, expected):
    logic = GOOD_LOGIC.replace("return Draft(answer=cand.episode.gazed, pool=sorted({e.gazed for e in past.usable}))", bad)
    task_plugin(site, "badlogic_pkg", "past_bad_logic", logic)
    store = toy_store_file(tmp_path)
    line = one_error_line(cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa"),
                              "--tasks", "past_bad_logic"))
    assert expected in line and "badlogic_pkg" in line and "badlogic_pkg_plugin.py" in line
    assert not (tmp_path / "qa").exists()


def test_a_candidate_with_a_string_episode_is_one_line(site, tmp_path):
    logic = GOOD_LOGIC.replace("yield Candidate(e.id, episode=e)", "yield Candidate(e.id, episode=e.id)")
    task_plugin(site, "badcand_pkg", "past_bad_cand", logic)
    store = toy_store_file(tmp_path)
    line = one_error_line(cli(site, "generate", "--store", str(store), "--out", str(tmp_path / "qa"),
                              "--tasks", "past_bad_cand"))
    assert "not an Episode" in line and "badcand_pkg" in line


def test_debug_prints_the_plugins_traceback_with_file_and_line(site, tmp_path):
    logic = GOOD_LOGIC.replace("return Draft(answer=cand.episode.gazed, pool=sorted({e.gazed for e in past.usable}))",
                               "return {}['missing']")
    task_plugin(site, "debug_pkg", "past_debug", logic)
    store = toy_store_file(tmp_path)
    args = ("generate", "--store", str(store), "--out", str(tmp_path / "qa"), "--tasks", "past_debug")
    assert "Traceback" not in cli(site, *args).stderr
    result = cli(site, *args, debug=True)
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert "debug_pkg_plugin.py\", line" in result.stderr and "KeyError" in result.stderr
