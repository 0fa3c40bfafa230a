"""Templates of ``streamgaze plugins new KIND NAME`` (`string.Template`: ``$name``, ``$package``, ``$dist``,
``$kind``, ``$package_data``: the task scaffold's spec and template files). Each plugin module imports only `streamgaze.plugins.api`; each test runs the plugin for real and
registers the module by hand when the package is not pip-installed yet."""
from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A streamgaze $kind plugin: $name"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["streamgaze"]

# streamgaze finds plugins through this entry-point group; `streamgaze plugins list` shows the distribution.
[project.entry-points.streamgaze]
$name = "$package.plugin"

[tool.setuptools]
packages = ["$package"]
$package_data
[tool.pytest.ini_options]
pythonpath = ["."]   # the tests import the package before it is installed
"""

README = {
    "task": "# $dist\n\nA streamgaze task: `streamgaze generate --tasks $name --store S` after `pip install -e .`; `pytest` runs its test.\n",
    "model": "# $dist\n\nA streamgaze model plugin: `streamgaze eval --model $name --qa QA --out RUN` after `pip install -e .`; `pytest` runs its test.\n",
    "detector": "# $dist\n\nA streamgaze fixation detector: `streamgaze fixations --detector $name --store S` after `pip install -e .`; `pytest` runs its test.\n",
    "loader": "# $dist\n\nA streamgaze ingest format: `streamgaze ingest $name FILE.csv --store S` after `pip install -e .`; `pytest` runs its test.\n",
    "labeller": "# $dist\n\nA streamgaze object labeller: `streamgaze objects --labeller $name --store S` after `pip install -e .`; `pytest` runs its test.\n",
}

REGISTER = '''

def ensure_registered():
    plugins = get_plugins()
    if not plugins.pm.has_plugin(NAME):  # not pip-installed yet: register the module by hand
        plugins.register(plugin, Source(NAME, "local", "-"))
'''

PLUGIN = {}
TEST = {}

PLUGIN["model"] = '''\
"""$name: a model for `streamgaze eval --model $name` (factory protocol: streamgaze/plugins/hookspecs.py)."""
from __future__ import annotations

from streamgaze.plugins.api import ModelOptions, Request, hookimpl


class Model:
    """Answers the first option (A) of every question and Yes at every proactive test point: a baseline to
    start from. Set ``uses_frames`` / ``uses_prompt`` to get the clip's frames (``request.images``, JPEG bytes)
    and the prompt text (``request.prompt``)."""

    uses_frames = False
    uses_prompt = False
    endpoint = None  # recorded in run.json (an URL, never a key)

    def __init__(self, spec: str, options: ModelOptions):
        # spec: what follows the colon for a name registered as "$name:" (empty here); options: seed, base_url, ...
        self.spec = spec
        self.options = options

    async def ask(self, request: Request) -> str:
        """The raw reply; the runner parses it (a letter for multiple choice, yes/no for proactive points)."""
        if request.proactive or not request.options:
            return "Yes"
        return "A"


@hookimpl
def streamgaze_models():
    return {"$name": Model}
'''

TEST["model"] = '''\
"""$name answering questions through the eval runner, as `streamgaze eval --model $name` runs it."""
import json

from streamgaze.eval.runner import EvalConfig, run_eval
from streamgaze.plugins.manager import Source, get_plugins

from $package import plugin

NAME = "$name"
''' + REGISTER + '''

def question(qid, answer, **extra):
    return {"id": qid, "task": "my_task", "video_id": "v1", "time_s": 10.0, "clip": [0.0, 10.0],
            "question": "Which object is the user looking at?", "options": ["mug", "kettle", "bowl", "sink"],
            "answer": answer, "answer_text": "mug", **extra}


def test_answers_through_the_eval_runner(tmp_path):
    ensure_registered()
    qa = tmp_path / "qa"
    qa.mkdir()
    lines = [question("q1", "A"), question("q2", "B"),
             question("q3", "A", test_points=[{"t_s": 5.0, "expected": "yes"}, {"t_s": 8.0, "expected": "no"}])]
    (qa / "my_task.jsonl").write_text("".join(json.dumps(q) + "\\n" for q in lines))
    summary = run_eval(qa, EvalConfig(model=NAME, out_dir=tmp_path / "run"))
    assert "asked 4" in summary
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    outcomes = {(r["question_id"], r["point_idx"]): r["outcome"] for r in rows}
    assert outcomes == {("q1", -1): "correct", ("q2", -1): "wrong", ("q3", 0): "correct", ("q3", 1): "wrong"}
'''

PLUGIN["detector"] = '''\
"""$name: a fixation detector for `streamgaze fixations --detector $name` (protocol: streamgaze/plugins/hookspecs.py)."""
from __future__ import annotations

import numpy as np

from streamgaze.plugins.api import hookimpl, runs


class Detector:
    """Velocity threshold: a run of steps slower than ``threshold_deg_s`` lasting ``min_duration_ms`` or more is a
    fixation. Replace ``__call__`` with your algorithm; keep its arguments and its return value."""

    #: every parameter with its default; `--param k=v` may set only these (numbers or true/false)
    defaults = {"threshold_deg_s": 50.0, "min_duration_ms": 100.0}

    def __call__(self, t, x, y, ok, *, deg_per_unit, **params):
        """``t, x, y``: float arrays (times non-decreasing); ``ok``: the usable samples; ``deg_per_unit``: degrees
        per unit of x and y. Returns ``(start, end)``: sample index arrays of the fixations, end exclusive, in time
        order and not overlapping (the host computes times, centroids and counts)."""
        p = {**self.defaults, **params}
        dt = np.diff(t)
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = np.hypot(np.diff(x), np.diff(y)) * deg_per_unit / dt
        slow_step = ok[:-1] & ok[1:] & (dt > 0) & (speed < p["threshold_deg_s"])
        start, end = runs(slow_step)  # a run of slow steps [s, e) joins the samples s .. e
        end = end + 1
        if start.size:
            keep = (t[end - 1] - t[start]) * 1000.0 >= p["min_duration_ms"]
            start, end = start[keep], end[keep]
        return start, end


@hookimpl
def streamgaze_fixation_detectors():
    return {"$name": Detector()}
'''

TEST["detector"] = '''\
"""$name on a synthetic gaze trace, looked up in the registry as `streamgaze fixations --detector $name` does."""
import numpy as np
import pytest

from streamgaze.gaze.fixations import detect
from streamgaze.plugins.manager import Source, get_plugins

from $package import plugin

NAME = "$name"
''' + REGISTER + '''

@pytest.fixture(autouse=True)
def registered():
    ensure_registered()


def trace():
    """100 Hz for 2 s: a fixation at x = 0.3, a saccade at 1 s, a fixation at x = 0.7; a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(200) / 100.0
    x = np.where(t < 1.0, 0.3, 0.7) + rng.normal(0, 0.0005, t.size)
    y = 0.5 + rng.normal(0, 0.0005, t.size)
    return t, x, y


def test_two_fixations_around_a_saccade():
    rows = detect(*trace(), detector=NAME).to_pylist()
    assert len(rows) == 2
    assert abs(rows[0]["x"] - 0.3) < 0.01 and abs(rows[1]["x"] - 0.7) < 0.01
    assert rows[0]["t_start"] == 0.0 and abs(rows[1]["t_start"] - 1.0) < 1e-9
    assert rows[0]["n_samples"] + rows[1]["n_samples"] == 200


def test_invalid_samples_split_a_fixation():
    t, x, y = trace()
    valid = np.ones(t.size, bool)
    valid[40:50] = False
    assert detect(t, x, y, valid, detector=NAME).num_rows == 3


def test_parameters():
    assert detect(*trace(), detector=NAME, min_duration_ms=1500).num_rows == 0
    assert detect(*trace(), detector=NAME, threshold_deg_s=10_000).num_rows == 1
'''

PLUGIN["loader"] = '''\
"""$name: an ingest format for `streamgaze ingest $name FILE --store S` (protocol: streamgaze/plugins/hookspecs.py)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from streamgaze.plugins.api import LoadContext, gaze_table, hookimpl, read_csv_columns, to_float


class Loader:
    """CSV with columns t_s (seconds), x and y (0..1 of the scene frame), optional valid (1 or 0)."""

    def __call__(self, ctx: LoadContext) -> dict:
        """``{table name: pyarrow.Table}``; the host validates (times, duplicates) and writes the store. Bad input:
        raise ``InputError(path, problem, row=..., column=...)`` (read_csv_columns does for missing columns)."""
        path = ctx.paths[0]
        table = read_csv_columns(path, {"t_s": pa.float64(), "x": pa.float64(), "y": pa.float64()},
                                 optional={"valid": pa.float64()})
        valid = to_float(table["valid"]) == 1 if "valid" in table.column_names else None
        if len(ctx.paths) > 1:
            ctx.notes.append(f"read {path.name} only")
        return {"gaze": gaze_table(to_float(table["t_s"]), to_float(table["x"]), to_float(table["y"]), valid)}

    def default_video_id(self, paths) -> str:
        return Path(paths[0]).stem


@hookimpl
def streamgaze_gaze_loaders():
    return {"$name": Loader()}
'''

TEST["loader"] = '''\
"""$name ingesting a small generated file into a real store, as `streamgaze ingest $name` does."""
import pytest

from streamgaze.errors import InputError
from streamgaze.gaze.ingest import ingest
from streamgaze.plugins.manager import Source, get_plugins
from streamgaze.store import open_store

from $package import plugin

NAME = "$name"
''' + REGISTER + '''

@pytest.fixture(autouse=True)
def registered():
    ensure_registered()


def test_ingests_into_the_store(tmp_path):
    csv = tmp_path / "rec1.csv"
    rows = [f"{i / 50:.2f},{0.2 + i / 1000:.3f},0.5,{0 if i == 7 else 1}" for i in range(50)]
    csv.write_text("t_s,x,y,valid\\n" + "\\n".join(rows) + "\\n")
    summary = ingest(tmp_path / "s.duckdb", NAME, [csv])
    assert "rec1" in summary
    with open_store(tmp_path / "s.duckdb", read_only=True) as store:
        (got,) = store.rows("SELECT count(*) AS n, sum(valid::INT) AS ok, max(t_s) AS t1 FROM gaze WHERE video_id = 'rec1'")
    assert got["n"] == 50 and got["ok"] == 49 and abs(got["t1"] - 0.98) < 1e-9


def test_a_missing_column_is_one_line_naming_the_file(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("t_s,x\\n0.0,0.5\\n")
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "s.duckdb", NAME, [csv])
    assert str(csv) in err.value.message and "\\n" not in err.value.message
    assert not (tmp_path / "s.duckdb").exists()
'''

PLUGIN["labeller"] = '''\
"""$name: an object labeller for `streamgaze objects --labeller $name` (protocol: streamgaze/plugins/hookspecs.py)."""
from __future__ import annotations

from streamgaze.plugins.api import Labeller, hookimpl


class NearestActionLabeller(Labeller):
    """Names each episode's gazed object after the action label nearest in time (its last word, "cut tomato" ->
    "tomato"). Replace ``label`` with your labeller; keep its arguments and the rows it returns."""

    name = "$name"

    def label(self, store, video, episodes, options):
        """``store`` (read-only), one ``videos`` row, its episodes in time order and the stage options; returns rows
        ``{"episode_id", "name", "role" (gazed / fov / outside), "attributes"}``."""
        actions = store.rows("SELECT t_start, t_end, label FROM actions WHERE video_id = ? ORDER BY t_start",
                             [video["video_id"]])
        rows = []
        for e in episodes:
            if not actions:
                break
            gap = [max(a["t_start"] - e["t_end"], e["t_start"] - a["t_end"], 0.0) for a in actions]
            nearest = actions[gap.index(min(gap))]
            words = nearest["label"].split()
            if words:
                rows.append({"episode_id": e["episode_id"], "name": words[-1], "role": "gazed",
                             "attributes": {"from_action": nearest["label"]}})
        return rows


@hookimpl
def streamgaze_object_labellers():
    return {"$name": NearestActionLabeller()}
'''

TEST["labeller"] = '''\
"""$name on the toy store (streamgaze.tasks.testing), as `streamgaze objects --labeller $name` runs it."""
from streamgaze.objects.stage import run_objects
from streamgaze.plugins.manager import Source, get_plugins
from streamgaze.store import open_store
from streamgaze.tasks.testing import toy_store

from $package import plugin

NAME = "$name"
''' + REGISTER + '''

def test_labels_the_toy_store(tmp_path):
    ensure_registered()
    toy_store(tmp_path / "toy.duckdb").close()
    summary = run_objects(tmp_path / "toy.duckdb", labeller=NAME)
    assert "6 with a gazed object" in summary
    with open_store(tmp_path / "toy.duckdb", read_only=True) as store:
        gazed = {r["episode_id"]: r["name"] for r in store.rows("SELECT episode_id, name FROM objects WHERE role = 'gazed'")}
    assert gazed["e1"] == "knife" and gazed["e2"] == "tomato" and gazed["e4"] == "kettle"
    assert len(gazed) == 6
'''
