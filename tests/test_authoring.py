"""Task authoring: `streamgaze tasks new`, the docs/writing-a-task.md tutorial, and a third-party task package that runs
with no change to the core (examples/streamgaze-longest-look, pip-installed into this venv if it is not)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.tasks.testing import toy_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "streamgaze-longest-look"
ENV = {**os.environ, "STREAMGAZE_PROGRESS": "0", "STREAMGAZE_STRICT_PLUGINS": "1"}
BIN = Path(sys.executable).parent


def run(args, cwd, check=True, pythonpath=None):
    env = {**ENV, "PATH": f"{BIN}{os.pathsep}{ENV.get('PATH', '')}"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def test_tasks_new_scaffolds_a_package_whose_own_test_passes(tmp_path):
    res = CliRunner().invoke(cli, ["tasks", "new", "my_scaffold", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    pkg = tmp_path / "streamgaze-my-scaffold"
    for rel in ("pyproject.toml", "streamgaze_my_scaffold/plugin.py", "streamgaze_my_scaffold/my_scaffold.yaml",
                "streamgaze_my_scaffold/my_scaffold.j2", "tests/test_my_scaffold.py"):
        assert (pkg / rel).is_file(), rel
    assert '[project.entry-points.streamgaze]\nmy_scaffold = "streamgaze_my_scaffold.plugin"' in (pkg / "pyproject.toml").read_text()
    # The scaffold works as written (the tutorial test also runs a scaffold's own pytest): load its spec with its
    # logic, in process and without registering it globally, and run it on the toy timeline.
    from streamgaze.tasks.generate import run_task_on_video
    from streamgaze.tasks.timeline import load_timelines
    from streamgaze.plugins.manager import Entry, Source
    from streamgaze.tasks.spec import load_spec

    module_spec = importlib.util.spec_from_file_location("scaffold_plugin", pkg / "streamgaze_my_scaffold" / "plugin.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    source = Source("my_scaffold", "local", "-")
    logics = {k: Entry(k, v, source) for k, v in module.streamgaze_answer_logic().items()}
    task = load_spec(module.streamgaze_task_specs()[0], source, logics)
    with toy_store(tmp_path / "toy.duckdb") as store:
        (video,) = load_timelines(store)
    items, skips = run_task_on_video(task, video, 0)
    assert len(items) == 3 and skips["cap"] >= 1
    again = CliRunner().invoke(cli, ["tasks", "new", "my_scaffold", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(cli, ["tasks", "new", "My-Task"])
    assert bad.exit_code == 2 and "lower case" in bad.output


def tutorial_steps(text: str):
    """The tutorial's tested steps, in order: ("write", path, body) after `<!-- write: PATH -->`, and
    ("run", command) for a ```bash block after `<!-- run -->`."""
    pattern = re.compile(r"<!-- (write: (?P<path>\S+)|run) -->\n```\w*\n(?P<body>.*?)```", re.S)
    for m in pattern.finditer(text):
        if m.group("path"):
            yield ("write", m.group("path"), m.group("body"))
        else:
            for line in m.group("body").splitlines():
                if line.strip() and not line.startswith("#"):
                    yield ("run", line)


def test_the_tutorial_works_word_by_word(tmp_path):
    steps = list(tutorial_steps((ROOT / "docs" / "writing-a-task.md").read_text(encoding="utf-8")))
    assert sum(s[0] == "write" for s in steps) >= 3 and sum(s[0] == "run" for s in steps) >= 3
    site = tmp_path / "site"
    for step in steps:
        if step[0] == "write":
            (tmp_path / step[1]).write_text(step[2], encoding="utf-8")
        elif step[1].startswith("pip install"):
            # Same install, into a private folder instead of this venv (the suite must not keep the tutorial's task).
            if not _pip_available():
                pytest.skip("pip is not available in this environment")
            pkg = step[1].split()[-1]
            run(pip_install("--target", str(site), str(tmp_path / pkg)), cwd=tmp_path)
        else:
            run(["bash", "-c", step[1]], cwd=tmp_path, pythonpath=site)
    qa = tmp_path / "streamgaze-my-longest-look" / "qa"
    assert (qa / "my_longest_look.jsonl").read_text().strip()


def _pip_available() -> bool:
    return importlib.util.find_spec("pip") is not None


def pip_install(*args) -> list[str]:
    """``pip install --no-deps --no-build-isolation ...``; a venv without ``wheel`` (a fresh CI venv) builds
    isolated instead, fetching setuptools and wheel from the package registry."""
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("wheel") and importlib.util.find_spec("setuptools") else []
    return [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation, *args]


@pytest.fixture(scope="module")
def example_installed():
    """Install the example package into the running venv (editable, no deps) unless it is there already."""
    installed_here = importlib.util.find_spec("streamgaze_longest_look") is None
    if installed_here:
        if not _pip_available():
            pytest.skip("pip is not available in this environment")
        run(pip_install("-e", str(EXAMPLE)), cwd=ROOT)
    yield True
    if installed_here:  # leave the environment as we found it (other tests count the built-in tasks)
        run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "streamgaze-longest-look"], cwd=ROOT)


def test_the_example_package_is_listed_with_its_distribution(example_installed):
    out = run([sys.executable, "-m", "streamgaze.cli", "tasks", "list"], cwd=ROOT).stdout.splitlines()
    row = next(line for line in out if line.startswith("past_longest_look "))
    assert "streamgaze-longest-look 0.1.0 (longest_look)" in row
    assert sum("built-in" in line for line in out) >= 10
    assert not any(line.startswith("(broken plugin)") for line in out)


def test_the_example_task_generates_on_the_toy_store_with_no_core_change(example_installed, tmp_path):
    toy_store(tmp_path / "toy.duckdb").close()
    res = run([sys.executable, "-m", "streamgaze.cli", "generate", "--store", str(tmp_path / "toy.duckdb"),
               "--tasks", "past_longest_look", "--out", str(tmp_path / "qa")], cwd=tmp_path)
    assert "past_longest_look" in res.stdout
    items = [json.loads(line) for line in (tmp_path / "qa" / "past_longest_look.jsonl").read_text().splitlines()]
    # Totals at e4 (44.0 s): kettle 4.0, tomato 3.5, knife 3.0, bowl 3.0 -> kettle; e5 likewise; e6 ties kettle and sink.
    assert [(q["id"].rsplit("/", 1)[1], q["answer_text"], q["time_s"]) for q in items] == [("e4", "kettle", 44.0), ("e5", "kettle", 73.0)]
    for q in items:
        assert sorted(q["options"]) == sorted(set(q["options"])) and q["options"]["ABCD".index(q["answer"])] == "kettle"
    report = json.loads((tmp_path / "qa" / "generation_report.json").read_text())
    assert report["tasks"]["past_longest_look"]["skipped"] == {"no_clear_longest": 1, "too_few_gazed": 3}


def test_the_example_task_is_evaluated_scored_under_its_suite_and_exported(example_installed, tmp_path):
    toy_store(tmp_path / "store.duckdb").close()
    cli = [sys.executable, "-m", "streamgaze.cli"]
    run([*cli, "generate", "--store", str(tmp_path / "store.duckdb"), "--out", str(tmp_path / "qa")], cwd=tmp_path)
    run([*cli, "eval", "--qa", str(tmp_path / "qa"), "--model", "first-option", "--out", str(tmp_path / "R")], cwd=tmp_path)
    scores = json.loads(run([*cli, "score", str(tmp_path / "R"), "--json"], cwd=tmp_path).stdout)
    assert set(scores["suites"]) == {"streamgaze", "longest_look"}
    assert scores["suites"]["longest_look"]["tasks"] == ["past_longest_look"]
    assert scores["overall"] == scores["suites"]["streamgaze"]["overall"]
    assert "past_longest_look" in scores["all_tasks"]["tasks"] and "past_longest_look" not in scores["suites"]["streamgaze"]["tasks"]
    run([*cli, "export", "streamgaze-json", "--qa", str(tmp_path / "qa"), "--out", str(tmp_path / "out")], cwd=tmp_path)
    (item, *_) = json.loads((tmp_path / "out" / "past_longest_look.json").read_text())
    assert item["questions"][0]["task_type"] == "past_longest_look"
    assert item["questions"][0]["required_ability"] == "scanpath_reasoning"
