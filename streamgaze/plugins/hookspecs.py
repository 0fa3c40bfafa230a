"""The hooks a streamgaze plugin may implement.

Every hook is a *provider*: it takes no arguments and returns a ``dict`` of name -> object (or, for
spec files, a list of paths). The host collects the dicts of every plugin into one registry per kind
(`streamgaze.plugins.manager.registry`); a name provided twice is an error naming both plugins.
Built-in plugins are registered exactly like third-party ones, through the ``streamgaze`` entry-point group.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("streamgaze")
hookimpl = pluggy.HookimplMarker("streamgaze")


@hookspec
def streamgaze_task_specs():
    """Task spec files (``<task_id>.yaml``, with the ``.j2`` template beside it) this plugin provides.

    Called when task specs are loaded. Returns a list of paths.
    """


@hookspec
def streamgaze_answer_logic():
    """Answer logic for tasks: ``{name: TaskLogic}`` (see `streamgaze.tasks.api.TaskLogic`).

    Called when task specs are loaded; a spec names its logic in ``logic:``.
    """


@hookspec
def streamgaze_gaze_loaders():
    """Ingest formats: ``{format_name: Loader}`` (see `streamgaze.gaze.ingest.Loader`).

    Called by ``streamgaze ingest FORMAT``.
    """


@hookspec
def streamgaze_fixation_detectors():
    """Fixation detectors: ``{name: Detector}`` (see `streamgaze.gaze.fixations.Detector`).

    Called by ``streamgaze fixations --detector`` and `streamgaze.gaze.fixations.detect`.
    """


@hookspec
def streamgaze_object_labellers():
    """Object labellers: ``{name: Labeller}`` (see `streamgaze.objects.stage.Labeller`).

    Called by ``streamgaze objects --labeller``.
    """


@hookspec
def streamgaze_models():
    """Model adapters: ``{name: factory}``; ``factory(spec: str, options: ModelOptions) -> Model``.

    A name ending in ``:`` takes an argument (``openai:`` serves ``openai:gpt-4o``).
    Called by ``streamgaze eval --model``.
    """


@hookspec
def streamgaze_validators():
    """Question validators: ``{name: Validator}``; each returns keep, or drop with a reason.

    Called by ``streamgaze generate`` after a question is built; validators never edit a question. A validator
    whose ``reads`` (the line's fields it looks at) leaves out ``question`` and ``evidence`` is shown the line
    without them.
    """


@hookspec
def streamgaze_suites():
    """Task suites: a list of paths to suite files (``<name>.yaml``: ``name``, ``description``, ``tasks``).

    A suite names the tasks whose mean accuracy is reported together (``streamgaze score``'s ``suites``); the
    suite ``streamgaze`` gives the contract's ``overall``. Called when a run is scored.
    """


@hookspec
def streamgaze_dataset_recipes():
    """Dataset recipes: a list of paths to recipe files (``<name>.yaml``: which files make a recording, how gaze,
    video and action files pair up by name, each file's format, dataset-level facts).

    Called by ``streamgaze ingest-dataset NAME`` and listed by ``streamgaze formats``; the schema is
    `streamgaze.gaze.datasets.recipes.Recipe`.
    """
