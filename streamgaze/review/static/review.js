// streamgaze review: keyboard shortcuts, saving verdicts and answers, the clip player.
(function () {
  "use strict";
  // keys typed into these are text, not shortcuts (a checkbox keeps the shortcuts)
  const TYPING = "textarea, select, input:not([type=checkbox]):not([type=radio])";
  const reviewer = document.getElementById("reviewer");
  // the per-server token every change must carry (the server refuses a POST without it)
  const tokenMeta = document.querySelector('meta[name="streamgaze-token"]');
  const token = tokenMeta ? tokenMeta.content : "";
  if (reviewer) {
    reviewer.addEventListener("change", function () {
      document.cookie = "reviewer=" + encodeURIComponent(reviewer.value.trim()) + "; path=/; SameSite=Strict";
      location.reload();
    });
  }
  const page = document.getElementById("page");
  if (!page) {
    document.addEventListener("keydown", function (ev) {
      if (ev.target.closest(TYPING)) return;
      const first = document.querySelector("a.qlink");
      if ((ev.key === "j" || ev.key === "ArrowRight" || ev.key === "Enter") && first) location.href = first.href;
    });
    return;
  }
  const d = page.dataset;
  const start = parseFloat(d.start), end = parseFloat(d.end);
  const video = document.getElementById("clip");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const reason = document.getElementById("reason");
  const auto = document.getElementById("autoadvance");
  let busy = false;

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.classList.remove("hidden");
  }
  function say(msg, cls) {
    status.textContent = msg;
    status.className = "status " + (cls || "");
  }

  if (video) {
    const rendering = document.getElementById("rendering");
    const timer = setTimeout(function () { if (video.readyState < 2) rendering.classList.remove("hidden"); }, 400);
    video.addEventListener("loadeddata", function () { clearTimeout(timer); rendering.classList.add("hidden"); });
    video.addEventListener("timeupdate", function () {
      document.getElementById("vtime").textContent = (start + video.currentTime).toFixed(2);
    });
    video.addEventListener("error", function () {
      clearTimeout(timer);
      rendering.classList.add("hidden");
      fetch(video.currentSrc || video.src).then(function (r) {
        if (r.ok) return showError("the browser cannot play this clip (" + (r.headers.get("content-type") || "?") + ")");
        return r.json().then(function (j) { showError(j.error || ("clip: HTTP " + r.status)); },
                             function () { showError("clip: HTTP " + r.status); });
      }, function (e) { showError("clip: " + e); });
    });
  }
  document.querySelectorAll("a.seek").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      if (!video) return;
      const t = parseFloat(a.dataset.t) - start;
      video.currentTime = Math.max(0, Math.min(t, (video.duration || end - start) - 0.05));
      video.pause();
    });
  });

  function go(url) { if (url) location.href = url; }

  function send(body) {
    if (busy) return;
    busy = true;
    body.id = d.id;
    body.point = parseInt(d.point, 10);
    body.reviewer = reviewer ? reviewer.value.trim() : "";
    say("saving…");
    fetch("/api/review", {method: "POST", headers: {"Content-Type": "application/json", "X-StreamGaze-Token": token}, body: JSON.stringify(body)})
      .then(function (r) {
        return r.json().then(function (j) { return [r.ok, j]; },
                             function () { return [false, {error: "not saved: HTTP " + r.status}]; });
      })
      .then(function (res) {
        busy = false;
        const ok = res[0], j = res[1];
        if (!ok) { say(j.error || "not saved", "bad"); return; }
        if (j.mode === "answer") {
          say("saved: " + j.answer + " (" + (j.correct ? "correct" : "wrong, the key is " + j.key) + ")", j.correct ? "good" : "bad");
        } else {
          say("saved: " + j.verdict + (j.reason ? " (" + j.reason + ")" : ""), j.verdict === "valid" ? "good" : "bad");
        }
        page.dataset.saved = "1";
        if (auto && auto.checked && d.next) setTimeout(function () { go(d.next); }, 350);
      }, function (e) { busy = false; say("not saved: " + e, "bad"); });
  }

  function answer(a) { if (d.mode === "answer") send({mode: "answer", answer: a}); }
  function verdict(v) {
    if (d.mode !== "verify") return;
    const why = reason ? reason.value.trim() : "";
    if (v === "invalid" && !why) {
      say("type a reason, then Enter", "bad");
      page.dataset.pending = "invalid";
      reason.focus();
      return;
    }
    send({mode: "verify", verdict: v, reason: why});
  }

  document.querySelectorAll("button.opt").forEach(function (b) {
    b.addEventListener("click", function () { answer(b.dataset.answer); });
  });
  const vb = document.getElementById("valid"), ib = document.getElementById("invalid");
  if (vb) vb.addEventListener("click", function () { verdict("valid"); });
  if (ib) ib.addEventListener("click", function () { verdict("invalid"); });
  if (reason) {
    reason.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); verdict(page.dataset.pending === "valid" ? "valid" : "invalid"); }
      if (ev.key === "Escape") { reason.blur(); }
    });
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest(TYPING)) return;
    const k = ev.key.length === 1 ? ev.key.toUpperCase() : ev.key;
    if (d.mode === "answer" && d.proactive === "1" && (k === "Y" || k === "N")) { answer(k === "Y" ? "yes" : "no"); }
    else if (d.mode === "answer" && d.letters.indexOf(k) >= 0 && k.length === 1) { answer(k); }
    else if (k === "V") { verdict("valid"); }
    else if (k === "I") { ev.preventDefault(); verdict("invalid"); }
    else if (k === "J" || k === "ArrowRight") { go(d.next); }
    else if (k === "K" || k === "ArrowLeft") { go(d.prev); }
    else if (k === "R" && video) { video.currentTime = 0; video.play(); }
    else if (k === "Escape") { go(d.index); }
    else return;
  });
})();
