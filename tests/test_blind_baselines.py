"""Blind baselines (``--model prior|longest|shortest``): leave-one-video-out prior, deterministic ties, the planted
bias found and flagged by ``score``, nothing found on the demo pipeline's questions, the generation report."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.eval.config import EvalConfig
from streamgaze.eval.runner import run_eval
from streamgaze.eval.score import score_run
from streamgaze.eval.stats import Units
from streamgaze.tasks.blind import blind_accuracies, blind_answers, blind_outcomes

OIE = "present_object_identification_easy"
OAA = "proactive_object_appearance_alert"
VOCAB = ["spoon", "plate", "knife", "ladle", "glass", "towel", "board", "whisk"]  # one length: no length bias


def _q(qid: str, video: str, options: list[str], answer: str, task: str = OIE) -> dict:
    return {"id": qid, "task": task, "family": task.split("_")[0], "video_id": video,
            "question": "Which object is the user looking at?", "options": options,
            "answer": "ABCD"[options.index(answer)], "answer_text": answer, "time_s": 10.0, "clip": [0.0, 10.0]}


def _write_qa(tmp_path, questions: list[dict]):
    qa = tmp_path / "qa"
    qa.mkdir()
    by_task: dict[str, list[dict]] = {}
    for q in questions:
        by_task.setdefault(q["task"], []).append(q)
    for task, qs in by_task.items():
        (qa / f"{task}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    return qa


def test_prior_leaves_the_questions_own_video_out():
    # v1's two questions both have "zebra" right; v2's one has "mug" right. Counting v1 itself, zebra (2) would
    # beat mug (1) for v1's questions; leaving v1 out, only mug has ever been right elsewhere
    qs = [_q("a", "v1", ["zebra", "mug", "plate", "sink"], "zebra"),
          _q("b", "v1", ["plate", "zebra", "sink", "mug"], "zebra"),
          _q("c", "v2", ["mug", "zebra", "jar", "sink"], "mug")]
    ans = blind_answers(qs, "prior")
    assert ans[("a", -1)] == "B" and ans[("b", -1)] == "D"
    assert ans[("c", -1)] == "B"  # for v2, v1's votes count: zebra


def test_longest_and_shortest_by_characters_with_deterministic_ties():
    qs = [_q("a", "v1", ["mug", "cutting board", "jar", "plate"], "mug"),
          _q("b", "v1", ["sink", "jar", "mug", "pan"], "sink")]  # jar, mug, pan tie for shortest
    longest = blind_answers(qs, "longest")
    shortest = blind_answers(qs, "shortest")
    assert longest[("a", -1)] == "B" and longest[("b", -1)] == "A"
    assert shortest[("a", -1)] in ("A", "C") and shortest[("b", -1)] in ("B", "C", "D")
    assert blind_answers(list(reversed(qs)), "shortest") == shortest  # no dependence on order
    # the tie is broken by the text, not the position: the same options shuffled give the same text
    shuffled = [_q("b", "v1", ["pan", "mug", "jar", "sink"], "sink")]
    pick = blind_answers(shuffled, "shortest")[("b", -1)]
    assert shuffled[0]["options"]["ABCD".index(pick)] == qs[1]["options"]["ABCD".index(shortest[("b", -1)])]


def test_proactive_prior_is_the_majority_answer_of_the_other_videos():
    def pro(qid, video, expected):
        return {"id": qid, "task": OAA, "family": "proactive", "video_id": video, "question": "Alert me.",
                "options": [], "answer": "", "answer_text": "", "time_s": 1.0, "clip": [0.0, 1.0],
                "test_points": [{"t_s": 10.0 * (k + 1), "expected": e} for k, e in enumerate(expected)]}
    qs = [pro("a", "v1", ["yes", "yes", "yes"]), pro("b", "v2", ["no", "no", "yes"]), pro("c", "v3", ["no", "yes"])]
    ans = blind_answers(qs, "prior")
    assert [ans[("a", k)] for k in range(3)] == ["no"] * 3  # v2 and v3: no 3, yes 2 (v1's own yeses left out)
    assert [ans[("b", k)] for k in range(3)] == ["yes"] * 3  # v1 and v3: yes 4, no 1
    assert [ans[("c", k)] for k in range(2)] == ["yes"] * 2  # v1 and v2: yes 4, no 2
    assert blind_answers(qs, "longest") == ans  # no options: longest and shortest answer as prior does


def _planted(n_videos=20, per_video=6, seed=0) -> list[dict]:
    """OIE questions where "spoon" is the right answer 60 % of the time (uniform letters; distractors from the
    whole vocabulary, spoon included when it is not the answer)."""
    rng = np.random.default_rng(seed)
    qs = []
    for v in range(n_videos):
        for k in range(per_video):
            answer = "spoon" if rng.random() < 0.6 else str(rng.choice(VOCAB[1:]))
            others = [t for t in VOCAB if t != answer]
            options = [answer, *rng.choice(others, size=3, replace=False).tolist()]
            rng.shuffle(options)
            qs.append(_q(f"{OIE}/v{v}/{k}", f"v{v}", options, answer))
    return qs


def test_prior_finds_a_planted_bias_through_eval_and_score_flags_it(tmp_path):
    qs = _planted()
    qa = _write_qa(tmp_path, qs)
    run_eval(qa, EvalConfig("prior", tmp_path / "R"))
    s = score_run(tmp_path / "R")
    t = s["tasks"][OIE]
    assert t["accuracy"] > 0.5 and t["ci95"][0] > 0.25  # chance is 1/4
    assert t["blind"]["prior"]["accuracy"] == t["accuracy"]  # score's own check agrees with the run
    assert "prior" in t["blind_above_chance"] and s["blind_flags"][OIE] == t["blind_above_chance"]
    # the letters carry no bias: longest / shortest stay near chance and are not flagged
    assert "longest" not in t["blind_above_chance"] and "shortest" not in t["blind_above_chance"]
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "R"), "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert f"warning: {OIE}" in res.output and "prior" in res.output
    assert "## Blind baselines" in (tmp_path / "rep" / "report.md").read_text()


def test_a_planted_length_bias_is_found_by_longest(tmp_path):
    rng = np.random.default_rng(1)
    qs = []
    for v in range(12):
        for k in range(4):
            options = [f"{'long ' * 3}object {v}-{k}", "cup", "pan", "jar"]
            rng.shuffle(options)
            qs.append(_q(f"x/{v}/{k}", f"v{v}", options, options[[len(o) for o in options].index(max(map(len, options)))]))
    acc = blind_accuracies(qs)
    assert acc["longest"] == 1.0 and acc["shortest"] == 0.0


def test_the_demo_pipeline_has_no_text_bias(tmp_path):
    """Two synthetic videos through the demo's stages (world, ingest, fixations, objects, generate), their
    question files merged: the prior learns each video's answers from the other and must not beat chance."""
    from streamgaze.demo.run import _ingest_world
    from streamgaze.demo.synthetic import make_world
    from streamgaze.gaze.fixations import run_fixations
    from streamgaze.objects.stage import run_objects
    from streamgaze.tasks.generate import run_generate

    questions = []
    for seed in (0, 5):
        root = tmp_path / f"s{seed}"
        world = make_world(root / "world", seed=seed, minutes=1.0)
        store = root / "store.duckdb"
        _ingest_world(store, world)
        run_fixations(store, detector="ivt", params={})
        run_objects(store, labeller="annotation", options={"truth": world.truth})
        run_generate(store, root / "qa", seed=seed)
        for path in sorted((root / "qa").glob("*.jsonl")):
            questions += [json.loads(line) for line in path.read_text().splitlines()]
    assert len({q["video_id"] for q in questions}) == 2
    mcq = [q for q in questions if not q.get("test_points")]
    outcomes = blind_outcomes(mcq, "prior")
    ci = Units.from_outcomes(outcomes).interval()
    chance = float(np.mean([1 / len(q["options"]) for q in mcq]))
    assert ci[0] <= chance <= ci[1], (ci, chance)
    # and no task is flagged by score's check
    qa = _write_qa(tmp_path, questions)
    run_eval(qa, EvalConfig("prior", tmp_path / "R"))
    s = score_run(tmp_path / "R")
    assert "prior" not in {b for flags in s["blind_flags"].values() for b in flags}


def test_the_generation_report_lists_letters_and_blind_accuracies(tmp_path):
    from streamgaze.tasks.generate import run_generate
    from streamgaze.tasks.testing import toy_store

    toy_store(tmp_path / "store.duckdb").close()
    report = run_generate(tmp_path / "store.duckdb", tmp_path / "qa")
    on_disk = json.loads((tmp_path / "qa" / "generation_report.json").read_text())
    assert on_disk["tasks"] == json.loads(json.dumps(report["tasks"]))
    for task, r in report["tasks"].items():
        assert set(r["blind_baselines"]) == {"prior", "longest", "shortest"}
        qs = [json.loads(line) for line in (tmp_path / "qa" / f"{task}.jsonl").read_text().splitlines()]
        assert r["blind_baselines"] == blind_accuracies(qs)
        if qs and not qs[0].get("test_points"):
            assert sum(r["answer_letters"].values()) == len(qs)


def test_the_models_need_the_question_set(tmp_path):
    # through the runner the model is prepared with every question; a rerun asks nothing new
    qa = _write_qa(tmp_path, _planted(n_videos=3, per_video=2))
    for m in ("prior", "longest", "shortest"):
        run_eval(qa, EvalConfig(m, tmp_path / m))
        rows = [json.loads(x) for x in (tmp_path / m / "predictions.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and all(r["outcome"] in ("correct", "wrong") for r in rows)


def test_blind_models_answer_streaming_polls(tmp_path):
    qs = [{"id": f"{OAA}/v{v}", "task": OAA, "family": "proactive", "video_id": f"v{v}", "question": "Alert me.",
           "options": [], "answer": "", "answer_text": "", "time_s": 1.0, "clip": [0.0, 1.0],
           "evidence": {"target": "mug", "onset_s": 20.0},
           "test_points": [{"t_s": 10.0, "expected": "no"}, {"t_s": 21.0, "expected": "yes"}]} for v in range(3)]
    qa = _write_qa(tmp_path, qs)
    run_eval(qa, EvalConfig("prior", tmp_path / "R", streaming=True, poll_s=5.0))
    rows = [json.loads(x) for x in (tmp_path / "R" / "stream.jsonl").read_text().splitlines()]
    assert rows and all(r.get("outcome") != "error" for r in rows)
