"""Audit speed: `streamgaze audit questions` over the released export of N synthetic timelines (default 200), against
generation of the same store (its peer in this run: the audit runs the same task logic once per candidate).

Run: python bench/bench_audit.py [n_videos]. Prints both times, questions/s and the ratio audit / generate.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STREAMGAZE_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generate import build_store

from streamgaze.eval.audit_questions import audit_questions
from streamgaze.tasks.export import export_streamgaze_json
from streamgaze.tasks.generate import run_generate


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = tmp / "store.duckdb"
        build_store(store, n)
        t0 = time.perf_counter()
        run_generate(store, tmp / "qa")
        t_generate = time.perf_counter() - t0
        export_streamgaze_json(tmp / "qa", tmp / "release", store=store)
        t0 = time.perf_counter()
        result = audit_questions(tmp / "release", store)
        t_audit = time.perf_counter() - t0
        total = result.summary()["total"]
    print(f"{n} videos, {total['questions']} released questions: faulty {total['faulty']}, "
          f"unverifiable {total['unverifiable']} {total['unverifiable_reasons']}")
    print(f"generate {t_generate:.2f} s; audit {t_audit:.2f} s ({total['questions'] / t_audit:,.0f} questions/s); "
          f"ratio audit / generate = {t_audit / t_generate:.2f}")


if __name__ == "__main__":
    main()
