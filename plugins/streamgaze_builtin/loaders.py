"""Built-in loaders plugin (filled in by its stage)."""
from streamgaze import hookimpl  # noqa: F401
