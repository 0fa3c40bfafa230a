"""The demo: a synthetic kitchen recording and the whole pipeline run on it."""
