"""Built-in models plugin (filled in by its stage)."""
from streamgaze import hookimpl  # noqa: F401
