"""`streamgaze plugins new KIND NAME`: each scaffold is a package whose own test passes as generated (run with
pytest in a subprocess, the package on PYTHONPATH and registered in-process by its test, never pip-installed),
and whose plugin works when registered the way an installed one would be."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.plugins.manager import Plugins, Source
from streamgaze.scaffold import PLUGIN_KINDS

ENV = {**os.environ, "STREAMGAZE_PROGRESS": "0", "STREAMGAZE_STRICT_PLUGINS": "1"}


def scaffold(kind, name, out):
    res = CliRunner().invoke(cli, ["plugins", "new", kind, name, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out / ("streamgaze-" + name.replace("_", "-"))


@pytest.fixture(scope="module")
def scaffolds(tmp_path_factory):
    """Every kind scaffolded into one folder, and one pytest run (a subprocess) over all their tests."""
    out = tmp_path_factory.mktemp("scaffolds")
    pkgs = {kind: scaffold(kind, f"my_{kind}", out) for kind in PLUGIN_KINDS}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *(str(p / "tests") for p in pkgs.values())],
        cwd=out, env={**ENV, "PYTHONPATH": os.pathsep.join(str(p) for p in pkgs.values())},
        capture_output=True, text=True, timeout=300)
    return pkgs, res


@pytest.mark.parametrize("kind", PLUGIN_KINDS)
def test_scaffold_is_a_package_whose_own_test_passes(kind, scaffolds):
    pkgs, res = scaffolds
    pkg, name = pkgs[kind], f"my_{kind}"
    package = f"streamgaze_{name}"
    for rel in ("pyproject.toml", "README.md", f"{package}/__init__.py", f"{package}/plugin.py", f"tests/test_{name}.py"):
        assert (pkg / rel).is_file(), rel
    pyproject = (pkg / "pyproject.toml").read_text()
    assert f'[project.entry-points.streamgaze]\n{name} = "{package}.plugin"' in pyproject
    plugin_src = (pkg / package / "plugin.py").read_text()
    imports = [line for line in plugin_src.splitlines() if line.startswith(("from streamgaze", "import streamgaze"))]
    assert len(imports) == 1 and imports[0].startswith("from streamgaze.plugins.api import ")  # the plugin API only
    mine = [line for line in res.stdout.splitlines() if f"test_{name}.py::" in line]
    assert mine and all(line.split()[1] == "PASSED" for line in mine), res.stdout + res.stderr


def load_plugin(pkg, package):
    spec = importlib.util.spec_from_file_location(f"{package}_plugin", pkg / package / "plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_scaffolded_detector_registers_like_an_installed_plugin(tmp_path):
    """In process, on a private plugin manager (the process-wide one stays as installed): the detector's hook
    gives one registry entry under its name, with its source, and the detector finds two fixations."""
    pkg = scaffold("detector", "my_det", tmp_path)
    module = load_plugin(pkg, "streamgaze_my_det")
    plugins = Plugins()
    plugins.register(module, Source("my_det", "streamgaze-my-det", "0.1.0"))
    entry = plugins.registry("fixation_detectors")["my_det"]
    assert entry.source.label == "streamgaze-my-det 0.1.0 (my_det)"
    t = np.arange(100) / 50.0
    x = np.where(t < 1.0, 0.2, 0.8)
    s, e = entry.obj(t, x, np.full(t.size, 0.5), np.ones(t.size, bool), deg_per_unit=82.0)
    assert list(s) == [0, 50] and list(e) == [50, 100]


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path):
    scaffold("model", "my_model", tmp_path)
    again = CliRunner().invoke(cli, ["plugins", "new", "model", "my_model", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(cli, ["plugins", "new", "model", "My-Model", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "lower case" in bad.output
    kind = CliRunner().invoke(cli, ["plugins", "new", "task", "x", "--out", str(tmp_path)])
    assert kind.exit_code == 2 and "model" in kind.output
