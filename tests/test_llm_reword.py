"""FAP's optional LLM rewording (tasks.md 2.8) against a real loopback server speaking the OpenAI
chat-completions protocol: sentences land in the options, a rerun asks nothing, conflicting rewordings fall back
to the labels, the key never reaches a cache file or an output, and the default (off) asks nothing."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
from werkzeug import Response

from streamgaze.llm import cache as llm
from streamgaze.tasks import names
from streamgaze.tasks.generate import generate, write_outputs
from streamgaze.errors import StreamGazeError
from streamgaze.tasks.spec import load_task_specs
from streamgaze.store import open_store
from streamgaze.tasks.testing import toy_store
from streamgaze_builtin.tasks.present_future_action_prediction import logic as fap

FAP = "present_future_action_prediction"
KEY = "sk-test-NEVER-WRITE-7f3a9c"
SENTENCES = {
    "take knife": "Pick up the knife.",
    "cut tomato": "Slice the tomato.",
    "put tomato in bowl": "Place the tomato into the bowl.",
    "fill kettle": "Fill the kettle with water.",
    "pour water": "Pour the water out.",
    "wash bowl": "Rinse the bowl.",
}


pytestmark = pytest.mark.usefixtures("llm_env")


def _forget():
    """What a new process would not have: the in-process caches."""
    llm._MEMORY.clear()
    llm.step_llm.cache_clear()


class FakeOpenAI:
    """A chat-completions handler: answers from a table, records what it was asked."""

    def __init__(self, table):
        self.table, self.asked, self.auth = dict(table), [], []

    def __call__(self, request):
        body = json.loads(request.get_data())
        self.auth.append(request.headers.get("Authorization"))
        assert body["temperature"] == 0
        label = body["messages"][-1]["content"]
        self.asked.append(label)
        text = self.table.get(label, label.capitalize() + ".")
        return Response(json.dumps({
            "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }), content_type="application/json")


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.duckdb"
    toy_store(path).close()
    return path


def fap_task(**params):
    (task,) = load_task_specs(only=[FAP])
    merged = {**task.params.model_dump(), **params}
    return dataclasses.replace(task, params=fap.Params(**merged))


def run(store_path, task, out=None):
    with open_store(store_path, read_only=True) as ro:
        (result,) = generate(ro, [task], seed=0)
    if out is not None:
        with open_store(store_path) as store:
            write_outputs(store, [result], out, 0)
    return {i["id"].rsplit("/", 1)[1]: i for i in result.items}


def serve(httpserver, table):
    handler = FakeOpenAI(table)
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    return handler


def reword_params(httpserver, cache):
    return dict(fap_reword=True, fap_reword_model="tiny-test", fap_reword_base_url=httpserver.url_for("/v1"),
                fap_reword_api_key=KEY, fap_reword_cache_dir=str(cache))


def test_rewording_lands_in_options_and_rerun_asks_nothing(httpserver, toy, tmp_path):
    handler = serve(httpserver, SENTENCES)
    cache = tmp_path / "cache"
    plain = run(toy, fap_task())
    assert handler.asked == []  # off by default: no request at all
    task = fap_task(**reword_params(httpserver, cache))
    first = run(toy, task, tmp_path / "out1")
    assert sorted(first) == sorted(plain) == ["e1", "e5", "e6"]
    assert len(handler.asked) == len(set(handler.asked)) <= len(SENTENCES)  # one request per raw label
    assert set(handler.auth) == {f"Bearer {KEY}"}
    shown = {names.clean(s): label for label, s in SENTENCES.items()}
    for key, q in first.items():
        p = plain[key]
        assert q["evidence"]["reworded"] is True
        # the same draw and letters as without rewording; only the shown texts change
        assert [shown[o] for o in q["options"]] == p["options"] and q["answer"] == p["answer"]
        assert q["answer_text"] == names.clean(SENTENCES[p["answer_text"]])
        assert q["evidence"]["option_labels"] == {o: shown[o] for o in sorted(q["options"])}
        assert q["question"] == p["question"]

    # a second run (new process state, same disk cache) sends 0 requests and writes the same bytes
    n = len(handler.asked)
    _forget()
    second = run(toy, fap_task(**reword_params(httpserver, cache)), tmp_path / "out2")
    assert len(handler.asked) == n and second == first
    assert (tmp_path / "out1" / f"{FAP}.jsonl").read_bytes() == (tmp_path / "out2" / f"{FAP}.jsonl").read_bytes()

    # and so does another process
    code = textwrap.dedent(f"""
        import dataclasses, json, sys
        from streamgaze.tasks.generate import generate
        from streamgaze.tasks.spec import load_task_specs
        from streamgaze.store import open_store
        from streamgaze_builtin.tasks.present_future_action_prediction import logic as fap
        (task,) = load_task_specs(only=[{FAP!r}])
        params = fap.Params(**{{**task.params.model_dump(), **json.loads(sys.argv[1])}})
        with open_store(sys.argv[2], read_only=True) as ro:
            (r,) = generate(ro, [dataclasses.replace(task, params=params)], seed=0)
        print(json.dumps(r.items, sort_keys=True))
    """)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(reword_params(httpserver, cache)), str(toy)],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    assert len(handler.asked) == n
    assert json.loads(out.stdout) == json.loads(json.dumps(list(first.values()), sort_keys=True))

    # the key is in no cache file and no output; the report names the model but not the key
    files = [p for p in (cache.rglob("*") if cache.exists() else []) if p.is_file()]
    assert len(files) == n
    for f in files + list((tmp_path / "out1").iterdir()):
        assert KEY not in f.read_text(encoding="utf-8")
    record = json.loads(files[0].read_text())
    assert set(record) == {"model", "system", "prompt", "text"} and record["model"] == "tiny-test"
    report = json.loads((tmp_path / "out1" / "generation_report.json").read_text())
    params = report["tasks"][FAP]["params"]
    assert params["fap_reword"] is True and params["fap_reword_model"] == "tiny-test"
    assert "fap_reword_api_key" not in params


def test_conflicting_rewordings_keep_the_labels(httpserver, toy, tmp_path):
    # "take knife" and "wash bowl" (both options of e1) reword to the same sentence
    table = {**SENTENCES, "take knife": "Handle the kitchen item.", "wash bowl": "Handle the kitchen item."}
    serve(httpserver, table)
    plain = run(toy, fap_task())
    qs = run(toy, fap_task(**reword_params(httpserver, tmp_path / "cache")))
    assert qs["e1"]["evidence"]["reworded"] is False
    assert qs["e1"]["options"] == plain["e1"]["options"] and qs["e1"]["answer_text"] == plain["e1"]["answer_text"]
    assert "option_labels" not in qs["e1"]["evidence"]
    for q in qs.values():  # never two options that conflict, reworded or not
        opts = q["options"]
        assert not any(names.conflict(a, b, "label") for i, a in enumerate(opts) for b in opts[i + 1 :])
        assert len({names.key(o, "label") for o in opts}) == 4


def test_near_duplicate_or_overlong_rewordings_keep_the_labels(httpserver, toy, tmp_path):
    table = {**SENTENCES, "pour water": "Pour the water.", "cut tomato": "Pour the waters.",
             "wash bowl": " ".join(["very"] * 30) + " long."}
    serve(httpserver, table)
    plain = run(toy, fap_task())
    qs = run(toy, fap_task(**reword_params(httpserver, tmp_path / "cache")))
    # e1 offers cut tomato, pour water and wash bowl: it keeps its labels
    assert qs["e1"]["evidence"]["reworded"] is False and qs["e1"]["options"] == plain["e1"]["options"]


def test_default_params_dump_unchanged_and_model_required(monkeypatch):
    dumped = fap.Params().model_dump()
    assert not any(k.startswith("fap_reword_") for k in dumped) and dumped["fap_reword"] is False
    with pytest.raises(ValueError, match="needs a model"):
        fap.Params(fap_reword=True)
    monkeypatch.setenv(llm.ENV_MODEL, "from-env")
    assert fap.Params(fap_reword=True).fap_reword


def test_environment_settings_and_failure_is_redacted(httpserver, tmp_path, monkeypatch):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": f"bad key {KEY}", "type": "invalid_request_error"}}, status=401)
    monkeypatch.setenv(llm.ENV_BASE_URL, httpserver.url_for("/v1"))
    monkeypatch.setenv(llm.ENV_MODEL, "env-model")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    client = llm.CachedLLM.from_settings(cache_dir=tmp_path / "c")
    assert client.model == "env-model" and client.base_url.startswith("http://")
    with pytest.raises(StreamGazeError) as err:
        client.complete("take knife")
    assert KEY not in str(err.value) and "401" in str(err.value)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.json"))


def test_retry_on_overload_then_cache(httpserver, tmp_path):
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json({"error": {"message": "busy"}}, status=503)
    handler = FakeOpenAI({"take knife": "Pick up the knife."})
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_handler(handler)
    client = llm.CachedLLM("m", httpserver.url_for("/v1"), None, tmp_path / "c", backoff_s=0.01)
    assert client.complete("take knife", system="s") == "Pick up the knife."
    assert client.requests == 2
    assert client.complete("take knife", system="s") == "Pick up the knife." and client.requests == 2
    key = llm.cache_key("m", "take knife", "s")
    assert (tmp_path / "c" / key[:2] / f"{key}.json").exists()
