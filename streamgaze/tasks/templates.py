"""Question templates: one sandboxed Jinja environment with StrictUndefined, for built-in and community tasks.

Templates are checked when specs load: they must compile, use only the variables the task's logic provides
(plus ``options``), and not write ``{name}`` with single braces, which Jinja would print literally.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from streamgaze.errors import SpecError

CORE_VARIABLES = frozenset({"options"})
_SINGLE_BRACE = re.compile(r"(?<![{$])\{\s*([A-Za-z_]\w*)\s*\}(?!\})")


@lru_cache(maxsize=None)
def environment(directory: str) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def load_template(spec_path: Path, name: str, allowed: frozenset[str]) -> jinja2.Template:
    """Compile ``name`` (beside ``spec_path``) and check its variables against ``allowed``."""
    path = spec_path.parent / name
    if not path.is_file():
        raise SpecError(spec_path, "template", f"template file {path.name!r} not found beside the spec")
    env = environment(str(spec_path.parent))
    source = path.read_text(encoding="utf-8")
    try:
        ast = env.parse(source, name=name, filename=str(path))
        template = env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(f"{path}:{exc.lineno}", None, f"template syntax error: {exc.message}") from None
    allowed = allowed | CORE_VARIABLES
    unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
    if unknown:
        raise SpecError(
            path, "template", f"unknown variable(s) {', '.join(unknown)}; the task provides: {', '.join(sorted(allowed))}"
        )
    for match in _SINGLE_BRACE.finditer(source):
        if match.group(1) in allowed:
            line = source.count("\n", 0, match.start()) + 1
            raise SpecError(f"{path}:{line}", "template", f"{{{match.group(1)}}} has single braces; write {{{{ {match.group(1)} }}}}")
    # Jinja gives a template its globals as a ChainMap over the environment's, and copies them into a new dict
    # at every render, which costs more than the rest of rendering a one-line question. A plain copy renders the
    # same (nothing adds globals to these environments), in about half the time.
    template.globals = dict(template.globals)
    # What the text can depend on: the variables the source names, unless it pulls in other templates.
    standalone = not any(True for _ in meta.find_referenced_templates(ast))
    _USES[template] = frozenset(meta.find_undeclared_variables(ast)) if standalone else None
    return template


_RENDERED: dict = {}  # (template, used context) -> text: rendering is a pure function of both, and contexts recur
_RENDERED_MAX = 200_000
_USES: dict = {}  # template -> the context variables its text can depend on (None: unknown, so all of them)


def _render_key(template, context: dict):
    """A hashable key for the part of a context the template uses: strings, numbers and lists/tuples of strings
    (types kept: 1, 1.0 and True render differently); None for anything else, which is rendered every time."""
    parts = [template]
    uses = _USES.get(template)
    for k, v in context.items():
        if uses is not None and k not in uses:
            continue
        t = type(v)
        if t is str or t is int or t is float or t is bool:
            parts.append((k, t, v))
        elif (t is list or t is tuple) and all(type(x) is str for x in v):
            parts.append((k, t, tuple(v)))
        else:
            return None
    return tuple(parts)


def render(template: jinja2.Template, context: dict, task_id: str, where: str) -> str:
    """Render to one line of question text; a missing variable is an error naming task, file and line."""
    key = _render_key(template, context)
    if key is not None:
        text = _RENDERED.get(key)
        if text is not None:
            return text
    text = _render(template, context, task_id, where)
    if key is not None:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[key] = text
    return text


def _render(template: jinja2.Template, context: dict, task_id: str, where: str) -> str:
    try:
        text = template.render(**context)
    except jinja2.UndefinedError as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): unsafe template: {exc}") from None
    text = " ".join(text.split())
    if not text:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): the template rendered empty text")
    return text
