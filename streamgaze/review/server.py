"""``streamgaze review``: a small Flask app on loopback for verifying questions and answering them blind.

Pages: ``/`` (tasks and a filtered question list), ``/q/<id>?mode=verify|answer`` (the overlay clip from the
clip start to the question time, the options, and in verify mode the answer and its evidence). API:
``POST /api/review``, ``GET /api/questions``, ``GET /api/scores``; ``GET /clip/<id>`` serves the clip.
Store access is serialised by one lock and every request opens and closes its own connection, so other
``streamgaze`` commands can read the store between requests. Bad input is answered with a one-line message
(in the page, or as ``{"error": ...}`` from the API), never a traceback. Requests naming another host, changes
without the page's token or from another origin are refused, and every response carries a strict CSP
(`streamgaze.review.security`).
"""
from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import Flask, jsonify, render_template, request, send_file, url_for

from streamgaze.errors import InputError, StreamGazeError
from streamgaze.review.clips import cached_clip, clip_source
from streamgaze.review.data import MODES, QuestionSet, human_scores, is_proactive, latest_reviews, record_review
from streamgaze.review.security import host_literal, install, new_token
from streamgaze.store import open_store

STATUSES = ("all", "unreviewed", "valid", "invalid", "answered", "unanswered")


class NotFound(StreamGazeError):
    code = 404


def default_reviewer() -> str:
    return os.environ.get("STREAMGAZE_REVIEWER") or os.environ.get("USER") or "reviewer"


def create_app(store_path, qa_dir, *, reviewer: str | None = None, cache_dir=None) -> Flask:
    """The review app for one store and one QA folder (both checked here, before serving)."""
    store_path = Path(store_path)
    if not store_path.is_file():
        raise InputError(store_path, "no such store file")
    open_store(store_path).close()  # checks the file is a store of this schema version, before serving
    questions = QuestionSet.load(qa_dir)
    app = Flask(__name__)
    app.config.update(
        STORE=store_path, QUESTIONS=questions, REVIEWER=reviewer or default_reviewer(),
        CACHE_DIR=Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "streamgaze-review-cache",
        JSON_SORT_KEYS=False,
    )
    install(app, new_token())
    lock = threading.Lock()
    prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-prefetch")

    def prefetch(q: dict | None, mode: str, point: int) -> None:
        """Render a clip in the background (the next question's), so it is ready when the reviewer gets there."""
        if q is None:
            return

        def job():
            try:
                with lock, store_ro() as store:
                    src, fps, track = clip_source(store, q["video_id"])
                cached_clip(src, fps, track, *clip_range(q, mode, point), app.config["CACHE_DIR"])
            except Exception:  # noqa: BLE001 - the page reports it when the clip is asked for
                pass

        prefetcher.submit(job)

    def store_ro():
        return open_store(store_path, read_only=True)

    def current_reviewer() -> str:
        return (request.cookies.get("reviewer") or app.config["REVIEWER"]).strip()[:80] or app.config["REVIEWER"]

    def question(qid: str) -> dict:
        q = questions.by_id.get(qid)
        if q is None:
            raise NotFound(f"no question {qid!r} in {questions.qa_dir}")
        return q

    def my_reviews(reviewer: str) -> tuple[dict, dict]:
        """verdicts {qid: row}, answers {(qid, point): row} of one reviewer (latest rows)."""
        with lock, store_ro() as store:
            rows = latest_reviews(store, reviewer=reviewer)
        verdicts = {r["question_id"]: r for r in rows if r["mode"] == "verify"}
        answers = {(r["question_id"], r["point_idx"]): r for r in rows if r["mode"] == "answer"}
        return verdicts, answers

    def n_points(q: dict) -> int:
        return len(q["test_points"]) if is_proactive(q) else 1

    def answered(q, answers) -> int:
        if is_proactive(q):
            return sum((q["id"], i) in answers for i in range(n_points(q)))
        return int((q["id"], -1) in answers)

    def filtered(task, status, text, verdicts, answers) -> list[dict]:
        out = []
        text = (text or "").lower()
        for q in questions.of_task(task):
            v = verdicts.get(q["id"])
            done = answered(q, answers) == n_points(q)
            keep = {
                "all": True, "unreviewed": v is None, "valid": bool(v and v["verdict"] == "valid"),
                "invalid": bool(v and v["verdict"] == "invalid"), "answered": done, "unanswered": not done,
            }.get(status, True)
            if keep and (not text or text in q["question"].lower() or text in q["id"].lower()):
                out.append(q)
        return out

    def filters() -> dict:
        status = request.args.get("status", "all")
        mode = request.args.get("mode", "verify")
        if status not in STATUSES:
            raise StreamGazeError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if mode not in MODES:
            raise StreamGazeError(f"mode must be verify or answer, not {mode!r}")
        task = request.args.get("task", "")
        if task and task not in questions.tasks:
            raise NotFound(f"no task {task!r} in {questions.qa_dir}")
        return {"task": task, "status": status, "mode": mode, "q": request.args.get("q", "")}

    @app.errorhandler(StreamGazeError)
    def on_error(exc: StreamGazeError):
        code = getattr(exc, "code", 400)
        if request.path.startswith(("/api/", "/clip/")):
            return jsonify(error=exc.message), code
        return render_template("error.html", message=exc.message, reviewer=current_reviewer()), code

    @app.errorhandler(404)
    def on_404(exc):
        if request.path.startswith(("/api/", "/clip/")):
            return jsonify(error=f"no such page: {request.path}"), 404
        return render_template("error.html", message=f"no such page: {request.path}", reviewer=current_reviewer()), 404

    @app.errorhandler(Exception)
    def on_crash(exc: Exception):  # one line, no traceback, whatever went wrong
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):  # 405 and the like
            message = f"{exc.code} {exc.name}: {request.method} {request.path}"
            if request.path.startswith(("/api/", "/clip/")):
                return jsonify(error=message), exc.code
            return render_template("error.html", message=message, reviewer=current_reviewer()), exc.code
        app.logger.error("review: %s: %s", type(exc).__name__, exc)
        message = f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if request.path.startswith(("/api/", "/clip/")):
            return jsonify(error=message), 500
        return render_template("error.html", message=message, reviewer=current_reviewer()), 500

    @app.get("/")
    def index():
        f = filters()
        reviewer = current_reviewer()
        verdicts, answers = my_reviews(reviewer)
        summary = []
        for task in questions.tasks:
            qs = questions.of_task(task)
            summary.append({
                "task": task, "n": len(qs),
                "verified": sum(q["id"] in verdicts for q in qs),
                "invalid": sum(verdicts.get(q["id"], {}).get("verdict") == "invalid" for q in qs),
                "answered": sum(answered(q, answers) == n_points(q) for q in qs),
            })
        rows = []
        for q in filtered(f["task"], f["status"], f["q"], verdicts, answers):
            v = verdicts.get(q["id"])
            rows.append({"q": q, "verdict": v["verdict"] if v else "", "answered": answered(q, answers), "points": n_points(q)})
        return render_template("index.html", f=f, summary=summary, rows=rows, statuses=STATUSES,
                               tasks=questions.tasks, reviewer=reviewer)

    @app.get("/q/<path:qid>")
    def view(qid: str):
        f = filters()
        q = question(qid)
        reviewer = current_reviewer()
        proactive = is_proactive(q)
        point = request.args.get("point", "0" if proactive and f["mode"] == "answer" else "-1")
        try:
            point = int(point)
        except ValueError:
            raise StreamGazeError(f"point must be a whole number, not {point!r}") from None
        if proactive and f["mode"] == "answer" and not 0 <= point < n_points(q):
            raise NotFound(f"question {qid!r} has test points 0 to {n_points(q) - 1}, not {point}")
        start, end = clip_range(q, f["mode"], point)
        video_error = None
        episodes = []
        with lock, store_ro() as store:
            try:
                clip_source(store, q["video_id"])
            except StreamGazeError as exc:
                video_error = exc.message
            if f["mode"] == "verify":
                episodes = evidence_episodes(store, q)
        verdicts, answers = my_reviews(reviewer)
        qs = filtered(f["task"], f["status"], f["q"], verdicts, answers)
        ids = [x["id"] for x in qs]
        if qid not in ids:  # opened directly, outside the current filter: navigate the whole task
            qs = questions.of_task(q["task"])
            ids = [x["id"] for x in qs]
        i = ids.index(qid)
        nav = {k: v for k, v in f.items() if v}

        def link(target: dict | None, pt: int | None = None):
            if target is None:
                return None
            extra = {"point": pt} if pt is not None and pt >= 0 else {}
            return url_for("view", qid=target["id"], **nav, **extra)

        step_points = proactive and f["mode"] == "answer"
        if step_points and point + 1 < n_points(q):
            next_url = link(q, point + 1)
            prefetch(q, f["mode"], point + 1)
        else:
            nxt = qs[i + 1] if i + 1 < len(qs) else None
            next_url = link(nxt)
            prefetch(nxt, f["mode"], 0 if nxt is not None and is_proactive(nxt) and f["mode"] == "answer" else -1)
        if step_points and point > 0:
            prev_url = link(q, point - 1)
        else:
            prv = qs[i - 1] if i > 0 else None
            prev_url = link(prv, n_points(prv) - 1 if prv is not None and is_proactive(prv) and f["mode"] == "answer" else None)
        mine = answers.get((qid, point if proactive else -1)) if f["mode"] == "answer" else None
        return render_template(
            "question.html", q=q, f=f, mode=f["mode"], point=point, proactive=proactive, start=start, end=end,
            clip_url=url_for("clip", qid=qid, mode=f["mode"], point=point), video_error=video_error,
            episodes=episodes, verdict=verdicts.get(qid), mine=mine, next_url=next_url, prev_url=prev_url,
            index_url=url_for("index", **nav), position=f"{i + 1} / {len(qs)}", reviewer=reviewer,
            letters=[chr(ord("A") + k) for k in range(len(q.get("options") or []))],
            mode_urls={m: url_for("view", qid=qid, **{**nav, "mode": m}) for m in MODES},
        )

    def clip_range(q: dict, mode: str, point: int) -> tuple[float, float]:
        """Answer mode: clip start to the question time (a proactive test point's time); verify mode shows a
        proactive question up to its last test point, so the event itself can be checked."""
        start, end = float(q["clip"][0]), float(q["time_s"])
        if is_proactive(q):
            times = [float(p["t_s"]) for p in q["test_points"]]
            end = times[point] if mode == "answer" and 0 <= point < len(times) else max(times + [end])
        return start, max(end, start)

    @app.get("/clip/<path:qid>")
    def clip(qid: str):
        q = question(qid)
        mode = request.args.get("mode", "verify")
        if mode not in MODES:
            raise StreamGazeError(f"mode must be verify or answer, not {mode!r}")
        try:
            point = int(request.args.get("point", "-1"))
        except ValueError:
            raise StreamGazeError("point must be a whole number") from None
        start, end = clip_range(q, mode, point)
        with lock, store_ro() as store:
            src, fps, track = clip_source(store, q["video_id"])
        path = cached_clip(src, fps, track, start, end, app.config["CACHE_DIR"])
        return send_file(path, mimetype="video/webm", conditional=True, max_age=3600)

    @app.post("/api/review")
    def api_review():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise StreamGazeError("send a JSON object: {id, mode, verdict?, reason?, answer?, point?}")
        q = question(str(body.get("id", "")))
        try:
            point = int(body.get("point", -1))
        except (TypeError, ValueError):
            raise StreamGazeError("point must be a whole number") from None
        reviewer = str(body.get("reviewer") or current_reviewer())
        with lock:
            row = record_review(app.config["STORE"], q, reviewer=reviewer, mode=str(body.get("mode", "")),
                                verdict=body.get("verdict"), reason=body.get("reason"), answer=body.get("answer"),
                                point_idx=point)
        if row["mode"] == "answer":
            row["key"] = q["test_points"][point]["expected"] if is_proactive(q) else q["answer"]
        return jsonify(row)

    @app.get("/api/questions")
    def api_questions():
        f = filters()
        verdicts, answers = my_reviews(current_reviewer())
        return jsonify([
            {"id": q["id"], "task": q["task"], "video_id": q["video_id"], "time_s": q["time_s"],
             "verdict": (verdicts.get(q["id"]) or {}).get("verdict"), "answered": answered(q, answers),
             "points": n_points(q)}
            for q in filtered(f["task"], f["status"], f["q"], verdicts, answers)
        ])

    @app.get("/api/scores")
    def api_scores():
        with lock:
            return jsonify(human_scores(store_path, videos={q["id"]: q["video_id"] for q in questions.questions}))

    return app


def evidence_episodes(store, q: dict) -> list[dict]:
    """The store's episodes (with their objects) that the question's evidence names, in time order."""
    names: set[str] = set()

    def walk(v):
        if isinstance(v, str):
            names.add(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(q.get("evidence") or {})
    if not names:
        return []
    eps = store.rows(
        "SELECT episode_id, t_start, t_end, x, y FROM episodes WHERE video_id = ? AND episode_id IN (SELECT unnest(?)) "
        "ORDER BY t_start", [q["video_id"], sorted(names)])
    objs = store.rows(
        "SELECT episode_id, name, role FROM objects WHERE video_id = ? AND episode_id IN (SELECT unnest(?)) ORDER BY name",
        [q["video_id"], [e["episode_id"] for e in eps]]) if eps else []
    for e in eps:
        e["objects"] = {role: [o["name"] for o in objs if o["episode_id"] == e["episode_id"] and o["role"] == role]
                        for role in ("gazed", "fov", "outside")}
    return eps


def make_review_server(store_path, qa_dir, *, host: str = "127.0.0.1", port: int = 8765, reviewer: str | None = None,
                       cache_dir=None):
    """The review server, bound and ready (``serve_forever()`` runs it; ``server.server_port`` is the port, useful
    with port 0); a port that cannot be bound is a one-line `StreamGazeError`. The socket is bound here, not by
    werkzeug, whose own message for a busy port is two lines and ``exit(1)``."""
    from werkzeug.serving import make_server, select_address_family

    app = create_app(store_path, qa_dir, reviewer=reviewer, cache_dir=cache_dir)
    sock = listen(host, port, select_address_family(host, port))
    try:
        server = make_server(host, port, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # werkzeug keeps its own duplicate of the descriptor
    # what http.server's server_bind would have set (werkzeug skips it for a passed descriptor)
    server.server_name, server.server_port = host, server.server_address[1]
    app.config["REVIEW_BIND"] = (host, server.server_port)
    return server


def listen(host: str, port: int, family) -> socket.socket:
    """A listening TCP socket on host:port, or a one-line error (a busy port names --port)."""
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StreamGazeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug: restart right after Ctrl-C
        sock.bind(infos[0][4])
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StreamGazeError(f"port {port} on {host} is in use; pass --port N (0 picks a free one)") from None
        raise StreamGazeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def server_url(host: str, port: int) -> str:
    return f"http://{host_literal(host)}:{port}/"


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def serve(store_path, qa_dir, *, host: str = "127.0.0.1", port: int = 8765, reviewer: str | None = None,
          cache_dir=None) -> None:
    """Run the review server until interrupted (threaded werkzeug server); prints nothing (`streamgaze review`
    announces the address)."""
    make_review_server(store_path, qa_dir, host=host, port=port, reviewer=reviewer, cache_dir=cache_dir).serve_forever()
