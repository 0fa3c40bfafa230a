"""Built-in streamgaze_compat plugin (to come)."""
from streamgaze import hookimpl  # noqa: F401
