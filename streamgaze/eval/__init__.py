"""Evaluation: ask models the questions (`runner.run_eval`), parse and score the replies (`score.score_runs`),
and write the report (`report.write_report`)."""
