"""streamgaze: build gaze-guided streaming-video QA benchmarks from egocentric video with eye tracking,
and evaluate multimodal models on them."""
from __future__ import annotations

__version__ = "0.1.0"

from streamgaze.plugins.hookspecs import hookimpl
from streamgaze.store import open_store


def load_task_specs(only=None, extra_paths=None):
    """Every registered task spec, loaded and checked (see `streamgaze.tasks.spec.load_task_specs`)."""
    from streamgaze.tasks.spec import load_task_specs as _load

    return _load(only=only, extra_paths=extra_paths)


__all__ = ["__version__", "hookimpl", "load_task_specs", "open_store"]
