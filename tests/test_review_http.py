"""streamgaze review over HTTP (Flask test client): pages, filters, the review API, the clip, human scores,
`generate --drop-invalid`, and bad input answered with a clear message, never a traceback."""
from __future__ import annotations

import html as html_mod
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from streamgaze.cli import cli
from streamgaze.review.data import human_scores, invalid_question_ids
from streamgaze.review.server import create_app
from streamgaze.store import open_store

SR = "past_scene_recall"
PGA = "proactive_gaze_triggered_alert"
EASY = "present_object_identification_easy"


def make_review_world(root: Path) -> tuple[Path, Path]:
    """A 6 s, 160x120, 10 fps video with gaze, two episodes, and a QA folder: three multiple-choice questions and
    one proactive question on it, and one question on a second video whose file is gone."""
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    fps, n, w, h = 10.0, 60, 160, 120
    writer = cv2.VideoWriter(str(root / "scene.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(n):
        frame = np.full((h, w, 3), (40 + 3 * i) % 255, np.uint8)
        cv2.rectangle(frame, (10 + 2 * i, 40), (40 + 2 * i, 70), (255, 200, 0), -1)
        writer.write(frame)
    writer.release()
    t = np.round(np.arange(0, 6.0, 0.05), 3)
    store_path = root / "store.duckdb"
    with open_store(store_path) as store, store.transaction():
        store.insert("videos", pa.table({
            "video_id": ["v1", "v2"], "dataset": ["test", "test"], "path": ["scene.mp4", "gone.mp4"],
            "fps": [fps, fps], "width": [w, w], "height": [h, h], "duration_s": [6.0, 6.0], "n_frames": [n, n]}))
        store.insert("gaze", pa.table({
            "video_id": ["v1"] * len(t), "t_s": t, "x": 0.5 + 0.2 * np.sin(t), "y": np.full(len(t), 0.5),
            "valid": [True] * len(t), "in_frame": [True] * len(t)}))
        store.insert("episodes", pa.table({
            "video_id": ["v1", "v1"], "episode_id": ["e1", "e2"], "t_start": [0.5, 2.0], "t_end": [1.5, 3.0],
            "x": [0.5, 0.6], "y": [0.5, 0.5], "n_fixations": [2, 3]}))
        store.insert("objects", pa.table({
            "video_id": ["v1"] * 3, "episode_id": ["e1", "e1", "e2"], "name": ["mug", "plate", "kettle"],
            "role": ["gazed", "fov", "gazed"], "attributes": ["{}"] * 3, "labeller": ["test"] * 3}))
    qa = root / "qa"
    qa.mkdir()

    def mcq(i, time_s, answer, video="v1", task=SR):
        opts = ["mug", "kettle", "plate", "sink"]
        return {"id": f"{task}/{video}/q{i}", "task": task, "family": task.split("_")[0], "video_id": video,
                "question": f"Question {i}: which object was NOT visible?", "options": opts, "answer": answer,
                "answer_text": opts["ABCD".index(answer)], "time_s": time_s, "clip": [0.0, time_s],
                "evidence": {"episode": "e1", "answer_seen_in": ["e2"]}}

    lines = {
        SR: [mcq(1, 2.0, "B"), mcq(2, 3.0, "A"), mcq(3, 4.0, "C")],
        PGA: [{"id": f"{PGA}/v1/mug", "task": PGA, "family": "proactive", "video_id": "v1",
               "question": "Alert me when I gaze on the mug.", "options": [], "answer": "", "answer_text": "",
               "time_s": 0.5, "clip": [0.0, 0.5], "evidence": {"target": "mug", "onset_s": 2.0},
               "test_points": [{"t_s": 1.0, "expected": "no"}, {"t_s": 2.5, "expected": "yes"}]}],
        EASY: [mcq(9, 2.0, "A", video="v2", task=EASY)],
    }
    for task, items in lines.items():
        (qa / f"{task}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in items))
    return store_path, qa


@pytest.fixture
def world(tmp_path):
    return make_review_world(tmp_path / "w")


@pytest.fixture
def client(world, tmp_path):
    store, qa = world
    app = create_app(store, qa, reviewer="ann", cache_dir=tmp_path / "cache")
    client = app.test_client()
    # what the page's own POSTs carry (tests/test_review_security.py checks the refusals)
    client.environ_base.update(HTTP_ORIGIN="http://localhost", HTTP_X_STREAMGAZE_TOKEN=app.config["REVIEW_TOKEN"])
    return client


def error_text(html: bytes) -> str:
    m = re.search(rb'id="error"[^>]*>([^<]*)<', html)
    return html_mod.unescape(m.group(1).decode()) if m else ""


def test_index_lists_tasks_and_filters(client):
    page = client.get("/")
    assert page.status_code == 200
    for task in (SR, PGA, EASY):
        assert task.encode() in page.data
    only_sr = client.get(f"/?task={SR}")
    assert only_sr.data.count(b'class="qlink"') == 3
    api = client.get(f"/api/questions?task={SR}").json
    assert [q["id"] for q in api] == [f"{SR}/v1/q{i}" for i in (1, 2, 3)]
    client.post("/api/review", json={"id": f"{SR}/v1/q2", "mode": "verify", "verdict": "invalid", "reason": "two right options"})
    assert [q["id"] for q in client.get("/api/questions?status=invalid").json] == [f"{SR}/v1/q2"]
    assert len(client.get("/api/questions?status=unreviewed").json) == 4
    assert client.get(f"/?task={SR}&status=invalid").data.count(b'class="qlink"') == 1


def test_question_view_verify_shows_evidence_answer_mode_hides_it(client):
    qid = f"{SR}/v1/q1"
    verify = client.get(f"/q/{qid}?mode=verify")
    assert verify.status_code == 200
    assert b"<video" in verify.data and b"evidence" in verify.data and b"answer_seen_in" in verify.data
    assert b"kettle" in verify.data  # the store's episode e2, named by the evidence
    answer = client.get(f"/q/{qid}?mode=answer")
    assert answer.status_code == 200
    assert b"answer_seen_in" not in answer.data and b"correct" not in answer.data.split(b"<main>")[1].split(b"<label")[0]
    nxt = re.search(rb'data-next="([^"]*)"', answer.data).group(1)
    assert f"/q/{SR}/v1/q2".encode() in nxt


def test_clip_is_webm_from_clip_start_to_question_time(client, tmp_path):
    import cv2

    resp = client.get(f"/clip/{SR}/v1/q1?mode=answer")
    assert resp.status_code == 200 and resp.mimetype == "video/webm"
    path = tmp_path / "c.webm"
    path.write_bytes(resp.data)
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n >= 15 and n <= 21  # 0..2.0 s at 10 fps, inclusive of the frame at the question time
    assert client.get(f"/clip/{SR}/v1/q1?mode=answer").data == resp.data  # cached
    proactive = client.get(f"/clip/{PGA}/v1/mug?mode=answer&point=1")
    assert proactive.status_code == 200 and proactive.mimetype == "video/webm"


def test_answers_and_verdicts_land_in_the_store(client, world):
    store, _ = world
    ok = client.post("/api/review", json={"id": f"{SR}/v1/q1", "mode": "answer", "answer": "b"}).json
    assert ok["correct"] is True and ok["answer"] == "B" and ok["reviewer"] == "ann"
    wrong = client.post("/api/review", json={"id": f"{SR}/v1/q2", "mode": "answer", "answer": "C", "reviewer": "bob"}).json
    assert wrong["correct"] is False and wrong["key"] == "A"
    yes = client.post("/api/review", json={"id": f"{PGA}/v1/mug", "mode": "answer", "answer": "yes", "point": 1}).json
    assert yes["correct"] is True and yes["point_idx"] == 1
    client.post("/api/review", json={"id": f"{SR}/v1/q3", "mode": "verify", "verdict": "invalid", "reason": "ambiguous"})
    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT reviewer, question_id, task, point_idx, mode, verdict, reason, answer, correct, created_at "
                      "FROM reviews ORDER BY created_at, question_id")
        assert invalid_question_ids(s) == {f"{SR}/v1/q3"}
    assert len(rows) == 4 and all(r["created_at"] is not None for r in rows)
    assert {(r["reviewer"], r["mode"], r["answer"], r["verdict"]) for r in rows} == {
        ("ann", "answer", "B", None), ("bob", "answer", "C", None), ("ann", "answer", "yes", None),
        ("ann", "verify", None, "invalid")}
    scores = human_scores(store)
    assert scores["tasks"][SR] == {**scores["tasks"][SR], "n": 2, "correct": 1, "accuracy": 0.5}
    assert scores["tasks"][PGA]["accuracy"] == 1.0 and scores["reviewers"] == ["ann", "bob"]
    # a changed mind: the latest answer counts
    client.post("/api/review", json={"id": f"{SR}/v1/q2", "mode": "answer", "answer": "A", "reviewer": "bob"})
    assert human_scores(store)["tasks"][SR]["accuracy"] == 1.0
    out = CliRunner().invoke(cli, ["review-score", "--store", str(store), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["tasks"][SR]["n"] == 2


@pytest.mark.parametrize("body, message", [
    ({"id": "nope", "mode": "answer", "answer": "A"}, "no question 'nope'"),
    ({"id": f"{SR}/v1/q1", "mode": "answer", "answer": "E"}, "answer one of A, B, C, D"),
    ({"id": f"{SR}/v1/q1", "mode": "guess", "answer": "A"}, "mode must be one of verify, answer"),
    ({"id": f"{SR}/v1/q1", "mode": "verify", "verdict": "invalid"}, "reason is required"),
    ({"id": f"{SR}/v1/q1", "mode": "verify", "verdict": "maybe"}, "verdict must be valid or invalid"),
    ({"id": f"{PGA}/v1/mug", "mode": "answer", "answer": "yes", "point": 7}, "has no test point 7"),
    ({"id": f"{PGA}/v1/mug", "mode": "answer", "answer": "B", "point": 0}, "answer yes or no"),
])
def test_bad_reviews_are_refused_with_a_message_and_nothing_written(client, world, body, message):
    resp = client.post("/api/review", json=body)
    assert resp.status_code in (400, 404)
    assert message in resp.json["error"]
    with open_store(world[0], read_only=True) as s:
        assert s.rows("SELECT count(*) AS n FROM reviews")[0]["n"] == 0


def test_bad_input_shows_a_clear_message_in_the_page(client, world):
    unknown = client.get("/q/no/such/question")
    assert unknown.status_code == 404
    assert "no question 'no/such/question'" in error_text(unknown.data)
    assert b"Traceback" not in unknown.data
    gone = client.get(f"/q/{EASY}/v2/q9?mode=answer")
    assert gone.status_code == 200
    assert "gone.mp4" in error_text(gone.data) and "is gone" in error_text(gone.data)
    assert b"<video" not in gone.data
    clip = client.get(f"/clip/{EASY}/v2/q9")
    assert clip.status_code >= 400 and "is gone" in clip.json["error"]
    # the video removed while the server runs
    (world[0].parent / "scene.mp4").unlink()
    page = client.get(f"/q/{SR}/v1/q1")
    assert "is gone" in error_text(page.data)
    for url in ("/?status=weird", "/?task=nope", f"/q/{SR}/v1/q1?mode=guess", f"/q/{PGA}/v1/mug?mode=answer&point=9", "/nowhere"):
        resp = client.get(url)
        assert resp.status_code in (400, 404), url
        assert error_text(resp.data) and b"Traceback" not in resp.data, url
    assert "error" in client.post("/api/review", data="not json").json


def test_create_app_refuses_missing_store_and_qa(tmp_path, world):
    from streamgaze.errors import InputError

    with pytest.raises(InputError, match="no such store file"):
        create_app(tmp_path / "none.duckdb", world[1])
    with pytest.raises(InputError, match="no such question folder"):
        create_app(world[0], tmp_path / "noqa")
    out = CliRunner().invoke(cli, ["review", "--store", str(tmp_path / "none.duckdb"), "--qa", str(world[1])])
    assert out.exit_code == 2 and "no such store file" in out.output


def test_generate_drop_invalid(tmp_path):
    from streamgaze.tasks.generate import run_generate
    from streamgaze.review.data import record_review
    from streamgaze.tasks.testing import toy_store

    db = tmp_path / "toy.duckdb"
    toy_store(db).close()
    task = "past_object_transition_prediction"
    first = run_generate(db, tmp_path / "qa1", seed=0, only=[task])
    items = [json.loads(line) for line in (tmp_path / "qa1" / f"{task}.jsonl").read_text().splitlines()]
    assert len(items) >= 2
    record_review(db, items[0], reviewer="ann", mode="verify", verdict="invalid", reason="wrong answer")
    record_review(db, items[1], reviewer="ann", mode="verify", verdict="valid")
    kept = run_generate(db, tmp_path / "qa2", seed=0, only=[task], drop_invalid=invalid_question_ids)
    ids = [json.loads(line)["id"] for line in (tmp_path / "qa2" / f"{task}.jsonl").read_text().splitlines()]
    assert items[0]["id"] not in ids and items[1]["id"] in ids
    assert kept["tasks"][task]["questions"] == first["tasks"][task]["questions"] - 1
    assert kept["tasks"][task]["skipped"]["reviewed_invalid"] == 1
    again = run_generate(db, tmp_path / "qa3", seed=0, only=[task])  # without the flag nothing is dropped
    assert again["tasks"][task]["questions"] == first["tasks"][task]["questions"]


def test_score_with_store_puts_human_accuracy_beside_the_models(world, tmp_path):
    from streamgaze.review.data import QuestionSet, record_review

    store, qa = world
    qs = QuestionSet.load(qa)
    record_review(store, qs.by_id[f"{SR}/v1/q1"], reviewer="ann", mode="answer", answer="B")
    record_review(store, qs.by_id[f"{SR}/v1/q2"], reviewer="ann", mode="answer", answer="D")
    run = tmp_path / "run"
    out = CliRunner().invoke(cli, ["eval", "--qa", str(qa), "--model", "random", "--out", str(run), "--store", str(store)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["score", str(run), "--store", str(store), "--json"])
    assert out.exit_code == 0, out.output
    scores = json.loads(out.output)
    assert SR in scores["tasks"] and scores["human"]["tasks"][SR]["accuracy"] == 0.5
    table = CliRunner().invoke(cli, ["score", str(run), "--store", str(store)])
    assert table.exit_code == 0 and "human" in table.output and "0.500" in table.output
    report = (run / "report.md").read_text()  # the report gets the human baseline with clustered intervals
    assert "## Human baseline" in report and "fewer than two reviewers" in report
    assert "agreement on blind answers: fewer than two reviewers" in table.output
