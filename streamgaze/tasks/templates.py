"""Question templates: one sandboxed Jinja environment with StrictUndefined, for built-in and community tasks.

Templates are checked when specs load: they must compile, use only the variables the task's logic provides
(plus ``options``), and not write ``{name}`` with single braces, which Jinja would print literally.

Templates are bounded (`BoundedEnvironment`), so a community template cannot run until killed or fill memory:
``**`` with an exponent above `MAX_EXPONENT` or a result above `MAX_DIGITS` digits, strings and lists built by
``*``, ``+``, ``%``, ``str.format``, ``join``, ``replace`` or the ``center``/``indent``/``format`` filters beyond
`MAX_SIZE` characters or items, ``range()`` beyond `MAX_SIZE` items, rendered text beyond `MAX_SIZE` characters,
and rendering beyond `RENDER_SECONDS` (checked cooperatively in the sandbox's hooks, in loops over ``range`` and
over lists the template built, and per output chunk: no signal, so it works in worker processes and threads).
A limit broken by constants alone (``{{ 9**(9**9) }}``) is a `SpecError` when the spec loads; one broken while
rendering is a `SpecError` naming the template, the task and the limit, raised before any output is written.
"""
from __future__ import annotations

import math
import operator
import re
import threading
import time
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from streamgaze.errors import SpecError

CORE_VARIABLES = frozenset({"options"})
_SINGLE_BRACE = re.compile(r"(?<![{$])\{\s*([A-Za-z_]\w*)\s*\}(?!\})")

MAX_EXPONENT = 100  # of ``**`` (bases -1, 0 and 1 excepted)
MAX_DIGITS = 1_000_000  # of a number made by ``**``
MAX_SIZE = 100_000  # characters of a string, items of a list or range, characters of the rendered text
RENDER_SECONDS = 2.0  # per render
_TICK_EVERY = 1024  # loop items between two clock checks
_BIG_WIDTH = re.compile(r"\d{6,}|\*")  # a width or precision of 100,000 or more, or one taken from the arguments


class TemplateLimit(Exception):
    """A template broke one of the limits; the message names the limit."""


_state = threading.local()  # deadline of the render running in this thread


def _tick() -> None:
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimit(f"rendering took more than {RENDER_SECONDS:g} s (the limit per render)")


def _size_error(what: str, size: float) -> TemplateLimit:
    return TemplateLimit(f"{what} would make {size:.3g} characters or items (the limit is {MAX_SIZE:,})")


class _CheckedList(list):
    """A list a template built: iterating it checks the clock, so nested loops over it stop at the time limit."""

    def __iter__(self):
        for i, item in enumerate(list.__iter__(self)):
            if i % _TICK_EVERY == 0:
                _tick()
            yield item


def _is_seq(x) -> bool:
    return isinstance(x, (str, list, tuple))


def bounded_binop(op: str, left, right):
    """``left op right`` within the limits, or a `TemplateLimit`."""
    _tick()
    if op == "**":
        if isinstance(left, (int, float)) and isinstance(right, (int, float)) and not isinstance(left, bool):
            if abs(right) > MAX_EXPONENT and abs(left) not in (0, 1):
                raise TemplateLimit(f"the exponent {right:.3g} of ** is above {MAX_EXPONENT}")
            if abs(left) > 1 and right > 0 and right * math.log10(abs(left)) > MAX_DIGITS:
                raise TemplateLimit(f"** would make a number of more than {MAX_DIGITS:,} digits")
        return operator.pow(left, right)
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if _is_seq(seq) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                raise _size_error("repeating with *", len(seq) * n)
        value = operator.mul(left, right)
        return _CheckedList(value) if type(value) is list else value
    if op == "+":
        if _is_seq(left) and _is_seq(right) and len(left) + len(right) > MAX_SIZE:
            raise _size_error("joining with +", len(left) + len(right))
        value = operator.add(left, right)
        return _CheckedList(value) if type(value) is list else value
    if op == "%" and isinstance(left, str):
        _check_format(left, right)
    return _BINOPS[op](left, right)


_BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
           "%": operator.mod, "**": operator.pow}


def _check_format(fmt: str, *args) -> None:
    if len(fmt) > MAX_SIZE:
        raise _size_error("formatting", len(fmt))
    for spec in re.findall(r"%[^%a-zA-Z]*[a-zA-Z%]|\{[^{}]*:[^{}]*\}|\{[^{}]*:[^{}]*\{", fmt):
        if _BIG_WIDTH.search(spec) or "{" in spec[1:]:
            raise TemplateLimit(f"the format {spec!r} has a width or precision above {MAX_SIZE:,} or taken from the arguments")


def bounded_range(*args) -> _CheckedList:
    _tick()
    r = range(*args)
    if len(r) > MAX_SIZE:
        raise _size_error("range()", len(r))
    return _CheckedList(r)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with ``**``, ``*``, ``+`` and ``%`` intercepted (and so never folded at compile time) and
    bounded, ``range`` bounded, and the clock checked in every call, attribute and item lookup."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.globals["range"] = bounded_range
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _checked_filter(self.filters[name], check)
        self.filters["join"] = _checked_filter(self.filters["join"], _check_join_filter)
        self.filters["replace"] = _checked_filter(self.filters["replace"], _check_replace_filter)

    def call_binop(self, context, op, left, right):
        return bounded_binop(op, left, right)

    def getattr(self, obj, attribute):
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _tick()
        return super().getitem(obj, argument)

    def call(self, context, obj, /, *args, **kwargs):
        _tick()
        bound = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        owner, name = getattr(bound, "__self__", None), getattr(bound, "__name__", "")
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                _check_format(owner)
            elif name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int) and args[0] > MAX_SIZE:
                raise _size_error(f"str.{name}", args[0])
            elif name == "join" and args:
                _check_join(owner, args[0])
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
            elif name == "expandtabs" and args and isinstance(args[0], int) and args[0] * owner.count("\t") > MAX_SIZE:
                raise _size_error("str.expandtabs", args[0] * owner.count("\t"))
        value = super().call(context, obj, *args, **kwargs)
        if _is_seq(value) and len(value) > MAX_SIZE:
            raise _size_error(name or "a call", len(value))
        return value


def _check_join(sep, items) -> None:
    if isinstance(items, (list, tuple, str)):
        total = len(sep) * max(len(items) - 1, 0) + sum(len(x) if isinstance(x, str) else 20 for x in items)
        if total > MAX_SIZE:
            raise _size_error("join", total)


def _check_replace(s, old, new) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = (len(s) + 1) if old == "" else s.count(old)
        total = len(s) + n * (len(new) - len(old))
        if total > MAX_SIZE:
            raise _size_error("replace", total)


def _check_join_filter(value, d="", *args, **kwargs) -> None:
    if isinstance(value, (list, tuple)):  # a generator is not consumed here
        _check_join(d if isinstance(d, str) else "", value)


def _check_replace_filter(s, old="", new="", *args, **kwargs) -> None:
    _check_replace(str(s), str(old), str(new))


def _check_width(s, width=80, *args, **kwargs) -> None:
    if isinstance(width, int) and width > MAX_SIZE:
        raise _size_error("a width", width)
    if isinstance(width, str) and len(width) * (str(s).count("\n") + 1) > MAX_SIZE:
        raise _size_error("indent", len(width) * (str(s).count("\n") + 1))


def _check_format_filter(value, *args, **kwargs) -> None:
    _check_format(str(value))


_FILTER_CHECKS = {"center": _check_width, "indent": _check_width, "format": _check_format_filter}


def _checked_filter(func, check):
    def checked(*args, **kwargs):
        _tick()
        # environment/context filters get that first: skip it for the check
        values = args[1:] if getattr(func, "jinja_pass_arg", None) is not None else args
        check(*values, **kwargs)
        return func(*args, **kwargs)

    for attr in ("jinja_pass_arg",):
        if hasattr(func, attr):
            setattr(checked, attr, getattr(func, attr))
    return checked


@lru_cache(maxsize=None)
def environment(directory: str) -> BoundedEnvironment:
    return BoundedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


class _NotConstant(Exception):
    pass


def _constant(node):
    """The value of an expression made of constants only (with the limits applied), else `_NotConstant`."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return [_constant(n) for n in node.items]
    if isinstance(node, nodes.Neg):
        return -_constant(node.node)
    if isinstance(node, nodes.Pos):
        return +_constant(node.node)
    if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
        return bounded_binop(node.operator, _constant(node.left), _constant(node.right))
    if (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range" and not node.kwargs
            and node.dyn_args is None and node.dyn_kwargs is None):
        return bounded_range(*[_constant(a) for a in node.args])
    raise _NotConstant


def _check_constants(ast, path: Path) -> None:
    """Evaluate every constant expression under the limits, so a template bomb fails when the spec loads."""
    for node in ast.find_all((nodes.BinExpr, nodes.Call)):
        try:
            _constant(node)
        except _NotConstant:
            pass
        except TemplateLimit as exc:
            raise SpecError(f"{path}:{node.lineno}", None, f"template limit: {exc}") from None
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
            pass  # a wrong constant expression fails when rendered, as before


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
    _check_constants(ast, path)
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
    outer = getattr(_state, "deadline", None)
    _state.deadline = time.monotonic() + RENDER_SECONDS
    try:
        chunks, size = [], 0
        for chunk in template.generate(**context):  # the output bounded chunk by chunk, with the clock
            size += len(chunk)
            if size > MAX_SIZE:
                raise _size_error("the rendered text", size)
            _tick()
            chunks.append(chunk)
        text = "".join(chunks)
    except TemplateLimit as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): template limit: {exc}") from None
    except (OverflowError, MemoryError, RecursionError) as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): template limit: {type(exc).__name__}: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): unsafe template: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:  # e.g. {{ 1 / 0 }}
        raise SpecError(template.filename, None, f"task {task_id} ({where}): template error: {type(exc).__name__}: {exc}") from None
    finally:
        _state.deadline = outer
    text = " ".join(text.split())
    if not text:
        raise SpecError(template.filename, None, f"task {task_id} ({where}): the template rendered empty text")
    return text
