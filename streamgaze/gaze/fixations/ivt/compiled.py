"""The dispatch to the compiled I-VT loop (`streamgaze.gaze.fixations.ivt.loop`), optional."""
from __future__ import annotations

import os


def compiled_ivt():
    """The compiled I-VT loop (module `streamgaze.gaze.fixations.ivt.loop`, built from Cython at install), or None
    when it was not built (no C compiler) or is switched off with ``STREAMGAZE_COMPILED=0``; then `ivt_pass` does
    the work."""
    if os.environ.get("STREAMGAZE_COMPILED", "1") == "0":
        return None
    try:
        from streamgaze.gaze.fixations.ivt import loop
    except ImportError:
        return None
    return loop
