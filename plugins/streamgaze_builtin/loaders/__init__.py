"""Built-in ingest formats (``streamgaze formats`` lists them), one module per device family or dataset:

- `pupil`: ``pupil-player``, a Pupil Player export folder, or its ``gaze_positions.csv`` (+ ``world_timestamps.csv``);
  ``pupil-cloud``, Pupil Cloud (Neon/Invisible) ``gaze.csv`` in scene pixels, ns timestamps.
- `ego4d`: ``ego4d-gaze`` (alias ``ego4d``), Ego4D ``gaze/<video_uid>.csv`` (Pupil columns, ``canonical_timestamp_s``).
- `generic`: ``generic-csv``, a time column (``t_s``/``t_ms``/``t_us``/``t_ns``), ``x,y`` normalised (or
  ``x_px,y_px`` with ``--video``), optional ``valid``; origin top left.
- `egtea`: ``egtea-smi``, EGTEA Gaze+ SMI BeGaze text export (both variants), 1280x960 px, frame times at 24 fps;
  ``egtea-actions``, EGTEA action split files.
- `egoexolearn`: ``egoexolearn-npy``, EgoExoLearn ``gazes_30fps_npy/<video>.npy``, (N, 3) ``x, y, valid`` per 30 fps
  frame; ``egoexolearn-actions``, per-video annotation JSON (``start``, ``end``, ``textAttribute_en``).
- `holoassist`: ``holoassist``, HoloAssist ``Export_py`` folder: eye ray 0.5 m out, into the PV camera,
  pinhole-projected; ``holoassist-actions``, annotation JSON, "Fine grained action" events as "verb noun".
- `aria`: ``aria-mps``, Aria MPS eye-gaze CSV (gen1 legacy/general, vergence, gen2), yaw/pitch through a declared
  camera.
- `tobii`: ``tobii-tx300``, Tobii TX300 SDK TSV, both eyes averaged where valid (validity <= 1).
- `eyelink`: ``eyelink-edf``, SR Research EDF through ``eyelinkio`` (optional extra ``edf``).
- `actions`: ``actions-csv``, ``t_start,t_end,label`` in seconds.

Shared helpers are in `common`. Pupil's ``norm_pos`` has a **bottom-left origin** (y up), so y = 1 - norm_pos_y
for both Pupil formats and Ego4D (StreamGaze's own Ego4D parser did not flip; we do).
"""
from __future__ import annotations

from streamgaze import hookimpl
from streamgaze_builtin.loaders.actions import ActionsCsvLoader
from streamgaze_builtin.loaders.aria import AriaMpsLoader
from streamgaze_builtin.loaders.ego4d import Ego4DGazeLoader
from streamgaze_builtin.loaders.egoexolearn import EgoExoLearnActionsLoader, EgoExoLearnNpyLoader
from streamgaze_builtin.loaders.egtea import EgteaActionsLoader, EgteaSmiLoader
from streamgaze_builtin.loaders.eyelink import EyeLinkEdfLoader
from streamgaze_builtin.loaders.generic import GenericCsvLoader
from streamgaze_builtin.loaders.holoassist import HoloAssistActionsLoader, HoloAssistLoader
from streamgaze_builtin.loaders.pupil import PupilCloudLoader, PupilPlayerLoader
from streamgaze_builtin.loaders.tobii import TobiiTx300Loader


@hookimpl
def streamgaze_gaze_loaders():
    return {
        "pupil-player": PupilPlayerLoader(),
        "ego4d-gaze": Ego4DGazeLoader(),
        "ego4d": Ego4DGazeLoader(),
        "generic-csv": GenericCsvLoader(),
        "egtea-smi": EgteaSmiLoader(),
        "egoexolearn-npy": EgoExoLearnNpyLoader(),
        "holoassist": HoloAssistLoader(),
        "aria-mps": AriaMpsLoader(),
        "pupil-cloud": PupilCloudLoader(),
        "tobii-tx300": TobiiTx300Loader(),
        "eyelink-edf": EyeLinkEdfLoader(),
        "actions-csv": ActionsCsvLoader(),
        "egtea-actions": EgteaActionsLoader(),
        "egoexolearn-actions": EgoExoLearnActionsLoader(),
        "holoassist-actions": HoloAssistActionsLoader(),
    }
