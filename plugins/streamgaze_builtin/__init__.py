"""The built-in streamgaze plugins, one folder per kind: ``loaders/``, ``detectors/``, ``labellers/``,
``compat/`` and ``tasks/`` (one folder per task), plus ``models.py`` and ``validators.py``.

Each registers through the ``streamgaze`` entry-point group (one entry point per folder or module), exactly as
a third-party package would, and imports from the core only `streamgaze.plugins.api` and `streamgaze.hookimpl`.
"""
