"""Built-in validators plugin (to come)."""
from streamgaze import hookimpl  # noqa: F401
