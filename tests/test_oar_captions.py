"""OAR's optional attributes from captions (tasks.md 2.7) against a real loopback server speaking the OpenAI
chat-completions protocol: the reference's metadata CSV (captions only) gives the questions the structured
attributes give, a rerun asks nothing, an unusable reply counts as absent, conflicting values never make two
correct options, a failing endpoint is one line, and the default (off) asks nothing and writes what it wrote."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from click.testing import CliRunner
from test_llm_reword import KEY, FakeOpenAI, run

from streamgaze.llm import cache as llm
from streamgaze.cli import cli
from streamgaze.tasks import names
from streamgaze.errors import StreamGazeError
from streamgaze.tasks.spec import load_task_specs
from streamgaze.store import open_store
from streamgaze.tasks.testing import TOY_ACTIONS, TOY_ATTRIBUTES, TOY_EPISODES, TOY_VIDEO, toy_store, write_timeline
from streamgaze_builtin.tasks.present_object_attribute_recognition import logic as oar

OAR = "present_object_attribute_recognition"
ASKED = ("color", "material", "shape", "state", "texture")

#: One caption per toy name, and the JSON the fake model answers for it (the toy's structured attributes).
CAPTIONS = {name: f"A {' '.join(a.values())} {name} on the kitchen counter." for name, a in TOY_ATTRIBUTES.items()}
REPLIES = {CAPTIONS[name]: json.dumps({k: attrs.get(k) for k in ASKED}) for name, attrs in TOY_ATTRIBUTES.items()}


@pytest.fixture(autouse=True)
def _env(llm_env):
    oar._reader.cache_clear()
    yield
    oar._reader.cache_clear()


def _forget():
    """What a new process would not have: the in-process caches."""
    llm._MEMORY.clear()
    llm.step_llm.cache_clear()
    oar._reader.cache_clear()


class JSONModel(FakeOpenAI):
    """`FakeOpenAI` that also keeps every request body (to check the decoding settings)."""

    def __init__(self, table):
        super().__init__(table)
        self.bodies = []

    def __call__(self, request):
        self.bodies.append(json.loads(request.get_data()))
        return super().__call__(request)


def serve(httpserver, table):
    handler = JSONModel(table)
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    return handler


def oar_task(**params):
    (task,) = load_task_specs(only=[OAR])
    merged = {**task.params.model_dump(), **params}
    return dataclasses.replace(task, params=oar.Params(**merged))


def caption_params(httpserver, cache, **more):
    return dict(oar_caption_attributes=True, oar_caption_model="tiny-test", oar_caption_base_url=httpserver.url_for("/v1"),
                oar_caption_api_key=KEY, oar_caption_cache_dir=str(cache), **more)


def metadata_csv(path, captions=CAPTIONS):
    """The toy timeline as the reference's metadata CSV: every object a dict with its ``detailed_caption``."""
    def obj(name):
        return {"object_identity": name, "detailed_caption": captions[name]} if name in captions else name

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["video_name", "episode_start_time", "episode_end_time", "duration", "representative_object",
                    "other_objects_in_cropped_area", "other_objects_outside_fov"])
        for _eid, t0, t1, gazed, fov, outside in TOY_EPISODES:
            w.writerow([f"clips/{TOY_VIDEO}.mp4", t0, t1, t1 - t0, json.dumps(obj(gazed)),
                        json.dumps([obj(n) for n in fov]), json.dumps([obj(n) for n in outside])])
    return path


def caption_store(path, captions, structured=None):
    """The toy timeline whose attribute rows hold ``structured`` (if any) plus a caption."""
    store = open_store(path)
    attrs = {n: {**(structured or {}).get(n, {}), **({"caption": captions[n]} if n in captions else {})}
             for n in TOY_ATTRIBUTES}
    write_timeline(store, TOY_VIDEO, TOY_EPISODES, TOY_ACTIONS, attrs)
    store.close()
    return path


def no_conflicts(q):
    opts = q["options"]
    assert len(opts) == 4 and opts.count(q["answer_text"]) == 1
    assert opts["ABCD".index(q["answer"])] == q["answer_text"]
    assert not any(names.conflict(a, b, "attribute") for i, a in enumerate(opts) for b in opts[i + 1 :])


def test_metadata_captions_give_the_structured_questions_and_rerun_asks_nothing(httpserver, tmp_path):
    handler = serve(httpserver, REPLIES)
    toy = tmp_path / "toy.duckdb"
    toy_store(toy).close()
    structured = run(toy, oar_task())
    assert len(structured) >= 5

    store = tmp_path / "meta.duckdb"
    res = CliRunner().invoke(cli, ["ingest", "streamgaze-metadata", str(metadata_csv(tmp_path / "meta.csv")),
                                   "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert run(store, oar_task()) == {} and handler.asked == []  # off: captions alone give no attributes, no request

    cache = tmp_path / "cache"
    first = run(store, oar_task(**caption_params(httpserver, cache)), tmp_path / "out1")
    # one greedy JSON-mode request per distinct caption, nothing else
    assert sorted(handler.asked) == sorted(CAPTIONS.values())
    assert all(b["temperature"] == 0 and b["response_format"] == {"type": "json_object"} for b in handler.bodies)
    assert all(b["model"] == "tiny-test" for b in handler.bodies) and set(handler.auth) == {f"Bearer {KEY}"}
    system = handler.bodies[0]["messages"][0]["content"]
    assert "JSON" in system and all(a in system for a in ASKED)
    # the same questions, options and letters as the structured attributes give; evidence says where from
    assert sorted(first) == sorted(structured)
    for key, q in first.items():
        assert q["evidence"].pop("from_caption") is True
        assert q == structured[key]
        no_conflicts(q)

    # a second run (new process state, same disk cache) sends no request and writes the same bytes
    n = len(handler.asked)
    _forget()
    second = run(store, oar_task(**caption_params(httpserver, cache)), tmp_path / "out2")
    assert len(handler.asked) == n
    assert (tmp_path / "out1" / f"{OAR}.jsonl").read_bytes() == (tmp_path / "out2" / f"{OAR}.jsonl").read_bytes()
    assert sorted(second) == sorted(first)

    # one cache file per caption, none holding the key; the report names the model but not the key
    files = sorted(p for p in cache.rglob("*.json"))
    assert len(files) == len(CAPTIONS)
    for f in files + list((tmp_path / "out1").iterdir()):
        assert KEY not in f.read_text(encoding="utf-8")
    record = json.loads(files[0].read_text())
    assert record["response_format"] == "json_object" and record["prompt"] in CAPTIONS.values()
    params = json.loads((tmp_path / "out1" / "generation_report.json").read_text())["tasks"][OAR]["params"]
    assert params["oar_caption_attributes"] is True and params["oar_caption_model"] == "tiny-test"
    assert "oar_caption_api_key" not in params


def test_unusable_replies_count_as_absent(httpserver, tmp_path):
    bad = ["not json at all", "[\"red\"]", "{\"color\": 12, \"material\": true}", "{\"color\": \"unknown\"}",
           "{\"colour\": \"the dark red colour of a ripe tomato\"}", "{\"color\": \"red2\"}", "{\"state\": [\"n/a\"]}",
           "{\"color\": ", "", "{\"size\": \"small\"}", "{\"color\": \"none\"}", "{\"texture\": \"other\"}"]
    captions = {name: f"caption of the {name}" for name in TOY_ATTRIBUTES}
    table = {c: bad[i % len(bad)] for i, c in enumerate(captions.values())}
    handler = serve(httpserver, table)
    store = caption_store(tmp_path / "s.duckdb", captions)
    task = oar_task(**caption_params(httpserver, tmp_path / "cache"))
    with open_store(store, read_only=True) as ro:
        from streamgaze.tasks.generate import generate

        (result,) = generate(ro, [task], seed=0)
    assert result.items == []
    assert result.skip_totals() == {"no_attributes": 6}  # every candidate, no crash
    assert sorted(handler.asked) == sorted(captions.values())


def test_conflicting_values_never_give_two_correct_options(httpserver, tmp_path):
    # every colour the model reads conflicts with red (equal, sub-phrase, listed confusable): the tomato's
    # question draws its colour distractors from the fallback list, never from these
    colours = {"knife": "dark red", "cutting board": "pink", "bowl": "red", "kettle": "Red", "fridge": "bright red",
               "sink": "pink", "tomato": "red"}
    captions = {name: f"the {name} in view" for name in TOY_ATTRIBUTES}
    table = {captions[n]: json.dumps({"color": colours.get(n, "red"), "material": None}) for n in TOY_ATTRIBUTES}
    serve(httpserver, table)
    store = caption_store(tmp_path / "s.duckdb", captions)
    qs = run(store, oar_task(**caption_params(httpserver, tmp_path / "cache")))
    assert qs, "some questions are made"
    for q in qs.values():
        no_conflicts(q)
        assert q["evidence"]["attribute"] == "color" and q["evidence"]["from_caption"] is True
    tomato = qs["e2"]
    assert tomato["answer_text"] == "red"
    assert not {"pink", "dark red", "bright red"} & set(tomato["options"])


def test_structured_values_win_and_captions_fill_what_is_missing(httpserver, tmp_path):
    captions = {"tomato": "a ripe tomato", "knife": "a knife"}
    structured = {n: dict(a) for n, a in TOY_ATTRIBUTES.items()}
    structured["tomato"] = {"color": "red", "shape": "unknown"}  # invalid: counts as absent
    structured["knife"] = {"color": "silver"}
    table = {"a ripe tomato": json.dumps({"color": "green", "shape": "round", "material": "n/a"}),
             "a knife": "```json\n{\"material\": \"steel\", \"state\": null}\n```"}
    handler = serve(httpserver, table)
    store = caption_store(tmp_path / "s.duckdb", captions, structured)
    task = oar_task(**caption_params(httpserver, tmp_path / "cache"))
    rows = {}
    with open_store(store, read_only=True) as ro:
        from streamgaze.tasks.timeline import load_timelines

        (video,) = load_timelines(ro)
    reader = oar.caption_reader(task.params)
    invalid = frozenset(names.key(v, "attribute") for v in task.params.invalid_values)
    for name in ("tomato", "knife"):
        row = video.attributes_of(name)[0]
        rows[name] = {a: oar.values_of(row, a, invalid, reader) for a in ASKED}
    assert rows["tomato"] == {"color": ("red",), "material": (), "shape": ("round",), "state": (), "texture": ()}
    assert rows["knife"] == {"color": ("silver",), "material": ("steel",), "shape": (), "state": (), "texture": ()}
    assert sorted(handler.asked) == ["a knife", "a ripe tomato"]  # each caption once, however many rows
    # without the reader the rows read as before
    assert oar.values_of(video.attributes_of("tomato")[0], "shape", invalid) == ()


def test_off_by_default_asks_nothing_and_dumps_nothing(httpserver, tmp_path):
    handler = serve(httpserver, {})
    store = caption_store(tmp_path / "s.duckdb", CAPTIONS, TOY_ATTRIBUTES)
    toy = tmp_path / "toy.duckdb"
    toy_store(toy).close()
    (task,) = load_task_specs(only=[OAR])
    assert task.params.oar_caption_attributes is False
    assert not any(k.startswith("oar_caption") for k in task.params.model_dump())
    assert run(store, task) == run(toy, task)  # a caption next to structured attributes changes nothing
    assert handler.asked == []


def test_params_need_a_model(monkeypatch):
    with pytest.raises(ValueError, match="needs a model"):
        oar.Params(oar_caption_attributes=True)
    monkeypatch.setenv(llm.ENV_MODEL, "from-env")
    assert oar.Params(oar_caption_attributes=True).model_dump()["oar_caption_model"] is None


def test_failing_endpoint_is_one_redacted_line(httpserver, tmp_path):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": f"model not found (key {KEY})", "type": "invalid_request_error"}}, status=404)
    store = caption_store(tmp_path / "s.duckdb", CAPTIONS)
    with pytest.raises(StreamGazeError) as err:
        run(store, oar_task(**caption_params(httpserver, tmp_path / "cache")))
    msg = err.value.message
    assert msg.startswith("oar_caption_attributes (task present_object_attribute_recognition): LLM request to model")
    assert httpserver.url_for("/v1") in msg and "404" in msg and "\n" not in msg and KEY not in msg
    assert not any((tmp_path / "cache").rglob("*.json"))


@pytest.mark.parametrize("reply, expected", [
    ('{"color": "Red", "material": "Stainless Steel", "shape": null}', {"color": ("red",), "material": ("stainless steel",)}),
    ('Sure! Here it is: {"colour": "light-gray"} hope that helps', {"color": ("light-gray",)}),
    ('```json\n{"state": ["open", "Open", "half open"], "texture": ""}\n```', {"state": ("open", "half open")}),
    ('{"color": "red", "extra": {"nested": 1}}', {"color": ("red",)}),
    ('{"color": "very dark cherry red"}', {}),  # longer than max_words
    ('{"color": "#ff0000"}', {}),
    ('["red"]', {}),
    ('{"color": "red"', {}),
    ("", {}),
])
def test_parse_caption_reply(reply, expected):
    assert oar.parse_caption_reply(reply, ASKED, 2) == expected
