"""``streamgaze.fixations.detect``: the stable Python entry to fixation detection (the implementation lives in
`streamgaze.gaze.fixations`, the pipeline's gaze stage; this name is kept for scripts and notebooks)."""
from __future__ import annotations

from streamgaze.gaze.fixations import detect

__all__ = ["detect"]
