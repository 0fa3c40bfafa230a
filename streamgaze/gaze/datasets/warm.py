"""Imported once by the forkserver of ``ingest-dataset --jobs N``: every worker forks from a process that has
already imported the parsing code, loaded the plugins and run a pyarrow compute kernel (whose first call imports
pandas, about half a second), so no worker pays that again."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from streamgaze.gaze.datasets import run  # noqa: F401  (the worker's code)
from streamgaze.plugins.manager import registry

registry("gaze_loaders")
pc.fill_null(pa.array([None], pa.string()), "")
