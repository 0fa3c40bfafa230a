"""streamgaze review end to end in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): the
server on 127.0.0.1 in a thread, the clip really plays, two questions answered and one marked invalid with the
keyboard, and the rows found in the store; bad input shows a message in the page."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("STREAMGAZE_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from test_review_http import EASY, SR, make_review_world  # noqa: E402

from streamgaze.review.server import make_review_server  # noqa: E402
from streamgaze.store import open_store  # noqa: E402

# python.md: without the background-networking flags Chromium's connections are refused by the closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def server(tmp_path):
    store, qa = make_review_world(tmp_path / "w")
    srv = make_review_server(store, qa, host="127.0.0.1", port=0, reviewer="browser-tester", cache_dir=tmp_path / "cache")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", store
    srv.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(15000)
    problems: list[str] = []  # CSP violations are console errors; a blocked script fails silently otherwise
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    yield pg
    context.close()
    assert not problems, problems


def test_answer_two_mark_one_invalid_in_chromium(server, page):
    base, store = server
    page.goto(f"{base}/?task={SR}&mode=answer")
    page.click("a.qlink >> nth=0")
    page.wait_for_url(f"**/q/{SR}/v1/q1**")
    # the VP8/WebM overlay clip decodes and plays in this Chromium
    page.wait_for_function("() => { const v = document.getElementById('clip'); return v && v.readyState >= 2 && v.videoWidth === 160; }")
    page.wait_for_function("() => document.getElementById('clip').currentTime > 0.2")
    assert page.locator("#error").is_hidden()
    assert page.locator("pre#evidence").count() == 0  # answer mode: no evidence
    page.keyboard.press("b")  # correct (key B); the page moves on by itself
    page.wait_for_url(f"**/q/{SR}/v1/q2**")
    page.keyboard.press("c")  # wrong (key A)
    page.wait_for_url(f"**/q/{SR}/v1/q3**")
    page.keyboard.press("k")  # back to q2: the saved answer is shown
    page.wait_for_url(f"**/q/{SR}/v1/q2**")
    assert "your answer: C (wrong)" in page.inner_text("#status")
    # verify mode: the evidence, then I, a reason, Enter
    page.click("text=verify")
    page.wait_for_url(f"**/q/{SR}/v1/q2?**mode=verify**")
    assert "answer_seen_in" in page.inner_text("pre#evidence")
    page.locator("#autoadvance").uncheck()
    page.keyboard.press("i")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'reason'")
    page.keyboard.type("two options are right")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('saved: invalid')")

    with open_store(store, read_only=True) as s:
        rows = s.rows("SELECT reviewer, question_id, mode, verdict, reason, answer, correct, created_at FROM reviews ORDER BY created_at")
    answers = {r["question_id"]: r for r in rows if r["mode"] == "answer"}
    verdicts = [r for r in rows if r["mode"] == "verify"]
    assert {q: (r["answer"], r["correct"]) for q, r in answers.items()} == {f"{SR}/v1/q1": ("B", True), f"{SR}/v1/q2": ("C", False)}
    assert [(r["question_id"], r["verdict"], r["reason"]) for r in verdicts] == [(f"{SR}/v1/q2", "invalid", "two options are right")]
    assert {r["reviewer"] for r in rows} == {"browser-tester"} and all(r["created_at"] for r in rows)


def test_bad_input_is_a_message_in_the_page(server, page):
    base, _ = server
    page.goto(f"{base}/q/{SR}/v1/nope")
    assert "no question" in page.inner_text("#error")
    page.goto(f"{base}/q/{EASY}/v2/q9?mode=answer")
    assert "is gone" in page.inner_text("#error")
    assert "Traceback" not in page.content()
