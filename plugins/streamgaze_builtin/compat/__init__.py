"""Compatibility with the StreamGaze reference: `metadata` (``streamgaze-metadata``, the import loader of the
reference's metadata CSV)."""
from __future__ import annotations

from streamgaze import hookimpl
from streamgaze_builtin.compat.metadata import StreamGazeMetadataLoader


@hookimpl
def streamgaze_gaze_loaders():
    return {"streamgaze-metadata": StreamGazeMetadataLoader()}
