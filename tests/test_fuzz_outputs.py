"""Outputs stay inside their folder, bad output paths fail before anything is written, and template bombs stop.

Every case runs the command line and checks: the exit code, exactly one ``Error:`` line (for a failure), no
traceback, nothing written outside the output folder (the whole tmp tree listed before and after), and the store
byte-identical where the command must not change it.
"""
from __future__ import annotations

import hashlib
import os
import textwrap
import time

import cv2
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.errors import InputError
from streamgaze.paths import MAX_NAME_BYTES, inside, safe_name
from streamgaze.store import open_store
from streamgaze.tasks.testing import toy_store

FPS, N, W, H = 10.0, 6, 64, 48


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("STREAMGAZE_PROGRESS", "0")


def tree(root) -> dict[str, str]:
    """Every file and folder under ``root``: relative path -> content hash ('dir' for folders)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(folder, d), root)] = "dir"
        for f in files:
            p = os.path.join(folder, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def run(args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    text = result.output  # stdout and stderr as the terminal shows them
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result, text


def assert_one_error(result, text, *needles):
    assert result.exit_code == 2, text
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and len(text.strip().splitlines()) == 1, text
    for needle in needles:
        assert needle in errors[0], errors[0]


# ---------------------------------------------------------------------------------------------------------------
# the helper


@pytest.mark.parametrize("plain", ["P01_kitchen", "toy_kitchen", "a-b.c", "vid 1", "Küche_01", "x" * MAX_NAME_BYTES])
def test_a_plain_name_is_unchanged(plain):
    assert safe_name(plain) == plain


@pytest.mark.parametrize("bad", ["../../x", "/abs/x", "a/b", "..", ".", "", "a\\b", "x\0y", "a\x1b[31mb", "a\nb",
                                 ".hidden", "trail.", "v" * 400, "é" * 200])
def test_an_unsafe_name_becomes_one_plain_component(bad, tmp_path):
    name = safe_name(bad)
    assert name not in ("", ".", "..") and "/" not in name and "\\" not in name and not name.startswith(".")
    assert all(c.isprintable() for c in name) and len(name.encode()) <= MAX_NAME_BYTES
    assert inside(tmp_path, name).parent == tmp_path
    assert safe_name(bad) == name  # deterministic


def test_different_ids_never_share_a_name():
    ids = ["a/b", "a_b", "a\\b", "a\nb", "..", "_.", "v" * 400, "v" * 401]
    assert len({safe_name(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/b", "..", ".", "", "x\0y"])
def test_inside_refuses_a_name_leaving_the_folder(bad, tmp_path):
    with pytest.raises(InputError):
        inside(tmp_path, bad)


def test_inside_refuses_a_symbolic_link_out(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(InputError, match="leaves its folder"):
        inside(tmp_path / "out", "link")


# ---------------------------------------------------------------------------------------------------------------
# render overlay: video ids that would escape the folder


def video_store(root, video_id: str):
    video = root / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for _ in range(N):
        writer.write(np.full((H, W, 3), 40, dtype=np.uint8))
    writer.release()
    t = np.arange(0, N / FPS, 1 / 30)
    path = root / "store.duckdb"
    with open_store(path) as st, st.transaction():
        st.insert("videos", pa.table({"video_id": [video_id], "dataset": ["t"], "path": ["clip.mp4"], "fps": [FPS],
                                      "width": [W], "height": [H], "duration_s": [N / FPS]}))
        st.insert("gaze", pa.table({"video_id": [video_id] * len(t), "t_s": t, "x": np.full(len(t), 0.5),
                                    "y": np.full(len(t), 0.5), "valid": np.ones(len(t), bool)}))
    return path


ESCAPING_IDS = ["../../../escaped", "../x", "a/b", "..", ".", "a\\b", "a\x1b[31mb", "a\nb", "a\rb", ".hidden",
                "v" * 300, "é" * 150, "x\0y"]


@pytest.mark.parametrize("video_id", ESCAPING_IDS + ["ABSOLUTE"])
def test_render_overlay_keeps_every_video_id_inside_the_folder(tmp_path, video_id):
    root = tmp_path / "w"
    (root / "deep" / "er").mkdir(parents=True)
    if video_id == "ABSOLUTE":
        video_id = str(tmp_path / "abs" / "x")
    try:
        store = video_store(root / "deep" / "er", video_id)
    except Exception as exc:  # a store that cannot hold the id is not an escape
        pytest.skip(f"the store refuses this id: {exc}")
    before = tree(tmp_path)
    result, text = run(["render", "overlay", "--store", store, "--out", root / "deep" / "er" / "out" / "sub",
                        "--video-id", video_id])
    assert result.exit_code == 0, text
    after = tree(tmp_path)
    new = sorted(set(after) - set(before))
    out = os.path.join("w", "deep", "er", "out")
    expected = os.path.join(out, "sub", safe_name(video_id) + "_overlay.mp4")
    assert new == [out, os.path.join(out, "sub"), expected], new
    assert {k: v for k, v in after.items() if k in before} == before  # the store and the video unchanged


def test_render_overlay_plain_id_keeps_its_name(tmp_path):
    store = video_store(tmp_path, "P01_kitchen")
    result, text = run(["render", "overlay", "--store", store, "--out", tmp_path / "o"])
    assert result.exit_code == 0, text
    assert os.listdir(tmp_path / "o") == ["P01_kitchen_overlay.mp4"]


# ---------------------------------------------------------------------------------------------------------------
# output paths that are files, folders where files go, or below a file


@pytest.fixture
def toy(tmp_path):
    """A toy store and its generated questions (qa/), a first-option run (run/): what the output commands read."""
    store = toy_store(tmp_path / "store.duckdb")
    store.close()
    result, text = run(["generate", "--store", tmp_path / "store.duckdb", "--out", tmp_path / "qa"])
    assert result.exit_code == 0, text
    result, text = run(["eval", "--qa", tmp_path / "qa", "--model", "first-option", "--out", tmp_path / "run"])
    assert result.exit_code == 0, text
    (tmp_path / "afile").write_text("x")
    return tmp_path


def _task_ids(qa):
    return sorted(f[:-len(".jsonl")] for f in os.listdir(qa) if f.endswith(".jsonl"))


def _bad_out(toy, kind: str, folder: str, target: str):
    """The --out value for ``kind``: ``file`` (an existing file), ``under_file`` (a folder below a file),
    ``target_dir`` (a folder where ``target`` would go, inside a fresh folder)."""
    if kind == "file":
        return toy / "afile"
    if kind == "under_file":
        return toy / "afile" / "sub"
    out = toy / folder
    (out / target).mkdir(parents=True)
    return out


OUTPUT_KINDS = ["file", "under_file", "target_dir"]


def check_nothing_written(toy, before):
    after = tree(toy)
    assert after == before, sorted(set(after) ^ set(before))


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_generate_bad_out(toy, kind):
    # the LAST task file is the folder: before the fix, every other task file was written before it failed
    target = _task_ids(toy / "qa")[-1] + ".jsonl"
    out = _bad_out(toy, kind, "qa2", target)
    before = tree(toy)
    result, text = run(["generate", "--store", toy / "store.duckdb", "--out", out])
    assert_one_error(result, text, str(out) if kind != "target_dir" else target)
    check_nothing_written(toy, before)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_export_bad_out(toy, kind):
    out = _bad_out(toy, kind, "exp", _task_ids(toy / "qa")[-1] + ".json")
    before = tree(toy)
    result, text = run(["export", "streamgaze-json", "--qa", toy / "qa", "--out", out, "--store", toy / "store.duckdb"])
    assert_one_error(result, text)
    check_nothing_written(toy, before)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_render_overlay_bad_out(tmp_path, kind):
    store = video_store(tmp_path, "clip")
    (tmp_path / "afile").write_text("x")
    out = _bad_out(tmp_path, kind, "o", "clip_overlay.mp4")
    before = tree(tmp_path)
    result, text = run(["render", "overlay", "--store", store, "--out", out])
    assert_one_error(result, text)
    check_nothing_written(tmp_path, before)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_score_bad_report(toy, kind):
    out = _bad_out(toy, kind, "rep", "report.md")
    before = tree(toy)
    result, text = run(["score", toy / "run", "--report", out])
    assert_one_error(result, text)
    check_nothing_written(toy, before)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_eval_bad_out(toy, kind):
    out = _bad_out(toy, kind, "run2", "predictions.jsonl")
    before = tree(toy)
    result, text = run(["eval", "--qa", toy / "qa", "--model", "first-option", "--out", out])
    assert_one_error(result, text)
    check_nothing_written(toy, before)


@pytest.mark.parametrize("kind", ["file", "under_file"])
def test_demo_bad_out(tmp_path, kind):
    (tmp_path / "afile").write_text("x")
    out = _bad_out(tmp_path, kind, "", "")
    before = tree(tmp_path)
    result, text = run(["demo", "--out", out])
    assert_one_error(result, text, str(out))
    check_nothing_written(tmp_path, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_generate_unwritable_out(toy):
    out = toy / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        before = tree(toy)
        result, text = run(["generate", "--store", toy / "store.duckdb", "--out", out])
        assert_one_error(result, text, "not writable")
        check_nothing_written(toy, before)
    finally:
        out.chmod(0o700)


# ---------------------------------------------------------------------------------------------------------------
# template bombs


SPEC = """\
id: bomb_task
family: present
ability: object_grounding
template: bomb_task.j2
logic: gazed_among_visible
ask_at: present
"""

BOMBS = {
    "power": ("{{ 9**(9**9) }}", "exponent"),
    "string_repeat": ('{{ "a" * 10**9 }}', "repeating with *"),
    "range": ("{% for i in range(10**9) %}{% endfor %}", "range()"),
    "options_repeat": ("{{ (options * 100000) | length }}", "repeating with *"),
    "nested_loops": ("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}", "2 s"),
    "format_width": ('{{ "%1000000000d" % 1 }}', "width"),
    "join": ('{{ (["x"] * 99999) | join("a" * 99999) }}', "join"),
    "float_power": ("{{ 9.5 ** 400 }}", "exponent"),
    "format_method": ('{{ "{:>1000000000}".format(1) }}', "width"),
    "replace": ('{{ ("a" * 99999) | replace("a", "a" * 99999) }}', "replace"),
    "long_output": ('{% for i in range(99999) %}{{ "a" * 9999 }}{% endfor %}', "rendered text"),
    "huge_int_text": ("{{ (10**100)**100 }}", "digits"),  # Python's int-to-text limit, a one-line error too
    "zero_division": ("{{ 1 / 0 }}", "ZeroDivisionError"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_template_bomb_is_one_line_and_fast(tmp_path, name):
    template, limit = BOMBS[name]
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "bomb_task.yaml").write_text(textwrap.dedent(SPEC))
    (specs / "bomb_task.j2").write_text("Which? " + template)
    toy_store(tmp_path / "store.duckdb").close()
    before = tree(tmp_path)
    t0 = time.monotonic()
    result, text = run(["generate", "--store", tmp_path / "store.duckdb", "--out", tmp_path / "qa", "--specs", specs,
                        "--tasks", "bomb_task"])
    assert time.monotonic() - t0 < 5
    assert_one_error(result, text, "bomb_task.j2", "template", limit)
    check_nothing_written(tmp_path, before)


def test_a_template_within_the_limits_renders(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "bomb_task.yaml").write_text(textwrap.dedent(SPEC))
    (specs / "bomb_task.j2").write_text('Which of {{ options | join(", ") }} ({{ 2**10 }}, {{ range(3) | list | length }}, '
                                        '{{ "%3d" % 7 }}, {{ (options * 2) | length }})?')
    toy_store(tmp_path / "store.duckdb").close()
    result, text = run(["generate", "--store", tmp_path / "store.duckdb", "--out", tmp_path / "qa", "--specs", specs,
                        "--tasks", "bomb_task"])
    assert result.exit_code == 0, text
    line = (tmp_path / "qa" / "bomb_task.jsonl").read_text().splitlines()[0]
    assert "(1024, 3, 7, 8)?" in line
