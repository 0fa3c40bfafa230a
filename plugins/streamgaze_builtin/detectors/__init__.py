"""Built-in fixation detectors (``streamgaze fixations --detector NAME``, `streamgaze.gaze.fixations.detect`), one
module each: `ivt` (``ivt``, ``ivt_flow``), `idt` (``idt``), `dwell` (``streamgaze_dwell``) and `remodnav`
(``remodnav``; optional: the REMoDNaV package is imported only when that detector runs, so it is registered
whether or not the extra ``streamgaze[remodnav]`` is installed). Shared helpers are in `common`.
"""
from __future__ import annotations

from streamgaze import hookimpl
from streamgaze_builtin.detectors.dwell import StreamGazeDwell
from streamgaze_builtin.detectors.idt import IDT
from streamgaze_builtin.detectors.ivt import IVT, IVTFlow
from streamgaze_builtin.detectors.remodnav import Remodnav


@hookimpl
def streamgaze_fixation_detectors():
    return {"ivt": IVT(), "ivt_flow": IVTFlow(), "idt": IDT(), "streamgaze_dwell": StreamGazeDwell(),
            "remodnav": Remodnav()}
