"""The architecture holds: the core names no built-in task, plugins import only the public surface, and the layers
contract of pyproject.toml passes (`lint-imports`, also run by .ci/run)."""
from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from streamgaze.tasks.suites import DEFAULT_SUITE, registered_suites

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "streamgaze"
BUILTIN = ROOT / "plugins" / "streamgaze_builtin"


def test_no_built_in_task_id_appears_in_the_core():
    ids = registered_suites()[DEFAULT_SUITE].tasks
    assert len(ids) == 10
    for path in CORE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [t for t in ids if t in text], path


def test_plugins_import_only_the_public_api_and_no_private_name():
    for path in [*BUILTIN.rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "streamgaze":
                assert node.module in ("streamgaze", "streamgaze.plugins.api"), f"{path}: {node.module}"
                assert not [a.name for a in node.names if a.name.startswith("_")], path
            if isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.split(".")[0] == "streamgaze"], path


def test_the_plugin_api_exports_no_private_name():
    from streamgaze.plugins import api

    assert all(not name.startswith("_") for name in api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed")
def test_the_import_contracts_hold():
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stable_python_api_keeps_its_names():
    import streamgaze
    import streamgaze.fixations
    from streamgaze.gaze import fixations

    assert streamgaze.fixations.detect is fixations.detect
    assert callable(streamgaze.open_store) and callable(streamgaze.load_task_specs)
