"""The template language notification templates get: Django's built-ins, restricted.

Loaded as the last builtin library of our engines, so its tags and filters replace Django's:
- tags that read files or dump state (`include`, `extends`, `load`, `debug`, `ssi`) and
  `lorem` (any amount of text from a short tag) do not parse;
- `{% for %}` charges the render budget for the whole loop before it runs;
- every filter checks the size of what it returns, and the ones whose argument sets the size
  of their output (`ljust:"999999999"`, `join`, `stringformat`, `floatformat`) check before
  they allocate it.
`instrument` makes each leaf node charge its output to the budget (template_limits.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.template import (
    Library,
    Node,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
    loader_tags,
)
from django.template.base import FilterExpression, Parser, Token

from notifier.template_limits import RenderBudget, active_budget
from notifier.template_scope import child_nodelists

register = Library()

# Tags a notification template may not use: they read template files (include, extends,
# load: our engines have no libraries, ssi: gone from Django but named for a clear message),
# dump the context and sys.modules into the message (debug), or print any amount of text
# from a few characters of source (lorem).
FORBIDDEN_TAGS = ("debug", "extends", "include", "load", "lorem", "ssi")


def _forbidden(name: str) -> Callable[[Parser, Token], Node]:
    def compile_forbidden(parser: Parser, token: Token) -> Node:
        raise TemplateSyntaxError(f"The {{% {name} %}} tag is not allowed in templates.")

    return compile_forbidden


for _name in FORBIDDEN_TAGS:
    register.tag(_name, _forbidden(_name))


class _ChargedSequence(FilterExpression):
    """The list a `{% for %}` iterates: resolving it charges the budget its length."""

    __slots__ = ()  # FilterExpression has slots: the same layout lets a parsed one become this

    def resolve(self, context: Any, ignore_failures: bool = False) -> Any:
        value = super().resolve(context, ignore_failures)
        budget = active_budget()
        if budget is not None and value is not None and hasattr(value, "__len__"):
            budget.charge_iterations(len(value))
        return value


@register.tag("for")
def do_for(parser: Parser, token: Token) -> Node:
    node = defaulttags.do_for(parser, token)
    node.sequence.__class__ = _ChargedSequence
    return node


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _width(budget: RenderBudget, value: Any, arg: Any = None) -> None:
    width = _int(arg)
    if width is not None:
        budget.check_size(abs(width))


def _format_widths(budget: RenderBudget, value: Any, arg: Any = None) -> None:
    # `stringformat:"0999999999d"` and `floatformat:"999999999"` pad to any width.
    for digits in re.findall(r"\d+", str(arg)):
        budget.check_size(int(digits))


def _join(budget: RenderBudget, value: Any, arg: Any = None) -> None:
    if hasattr(value, "__len__") and len(value) > 1:
        budget.check_size(len(str(arg)) * (len(value) - 1))


PRECHECKS: dict[str, Callable[..., None]] = {
    "center": _width,
    "ljust": _width,
    "rjust": _width,
    "stringformat": _format_widths,
    "floatformat": _format_widths,
    "join": _join,
}
FILTER_FLAGS = ("is_safe", "needs_autoescape", "expects_localtime")


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    precheck = PRECHECKS.get(name)

    @functools.wraps(func)  # Django reads the wrapped signature to check the arguments
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if budget is None:
            return func(value, *args, **kwargs)
        if precheck is not None:
            precheck(budget, value, *args)
        result = func(value, *args, **kwargs)
        if isinstance(result, str | list | tuple):  # `add` doubles a list or a string
            budget.check_size(len(result))
        return result

    return guarded


for _name, _func in defaultfilters.register.filters.items():
    register.filter(
        _name,
        _guarded(_name, _func),
        **{flag: getattr(_func, flag) for flag in FILTER_FLAGS if hasattr(_func, flag)},
    )

# Nodes whose output is made of their children's (charged there); every other node is a leaf
# and charges what it renders.
CONTAINERS: tuple[type[Node], ...] = (
    defaulttags.AutoEscapeControlNode,
    defaulttags.FilterNode,
    defaulttags.ForNode,
    defaulttags.IfChangedNode,
    defaulttags.IfNode,
    defaulttags.SpacelessNode,
    defaulttags.WithNode,
    loader_tags.BlockNode,
)
_charged_classes: dict[type[Node], type[Node]] = {}


def _charged(cls: type[Node]) -> type[Node]:
    found = _charged_classes.get(cls)
    if found is not None:
        return found
    base_render = cls.render_annotated

    def render_annotated(self: Node, context: Any) -> Any:
        output = base_render(self, context)
        budget = active_budget()
        if budget is not None:
            budget.charge_output(len(str(output)))
        return output

    found = type(cls.__name__, (cls,), {"render_annotated": render_annotated})
    _charged_classes[cls] = found
    return found


def instrument(nodelist: Iterable[Node]) -> None:
    """Make every leaf node of a freshly compiled template charge its output to the budget."""
    for node in nodelist:
        if isinstance(node, CONTAINERS):
            for child in child_nodelists(node):
                instrument(child)
        elif type(node) not in _charged_classes.values():
            node.__class__ = _charged(type(node))
