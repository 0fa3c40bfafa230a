"""Built-in openai_labeller plugin (to come)."""
from streamgaze import hookimpl  # noqa: F401
