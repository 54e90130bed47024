"""How large a render can be, known without rendering, for the parts made of text and plain
variables only (`{{ name }}`, `{{ recipient.name }}`: no filter, no tag) whose values are text.

The API renders each variant a notification will use before accepting it (a render too large for
its channel, or a subject that a value breaks over two lines, is the caller's 400). For such
parts nothing but their size and their line breaks can fail: Django's render of a plain variable
whose value is a `str` is the value itself (HTML-escaped in the HTML part), and text is itself.
`render_bound` adds those up; a caller may skip the render when the bound is within the limits
and the subject cannot break, and renders as before otherwise. It never says more than it knows:
any other node, filter, lookup or value type gives None (render to find out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.utils.html import conditional_escape

from notifier.template_compile import TemplateError, compiled


@dataclass(frozen=True)
class RenderBound:
    """`render` of the same arguments gives at most `max_bytes` bytes (UTF-8, every part
    together), fails only on a limit below that (or its clock), and its subject holds a CR or
    LF only if `subject_line_break`."""

    max_bytes: int
    subject_line_break: bool


@dataclass(frozen=True)
class _Plain:
    text_bytes: int
    text_line_break: bool
    lookups: tuple[tuple[str, ...], ...]


def has_line_break(value: str) -> bool:
    """Whether `value` holds a CR or LF: in a subject (a mail header) it would start another
    header."""
    return "\r" in value or "\n" in value


def _plain_lookups(expression: Any) -> tuple[str, ...] | None:
    """The lookups of `{{ a.b }}` without a filter; None for anything else (a literal, a
    translation, a filter)."""
    if type(expression) is not FilterExpression or expression.filters:
        return None
    var = expression.var  # a constant (`{{ "x" }}`) is the resolved value, not a Variable
    if type(var) is not Variable or var.lookups is None or var.translate:
        return None
    return tuple(var.lookups)


# What each compiled template is made of, for as long as `compiled`'s cache keeps the template.
_PLAIN: WeakKeyDictionary[Any, _Plain | None] = WeakKeyDictionary()


def _plain(source: str, html: bool) -> _Plain | None:
    """What a plain source is made of, or None when it is not plain (or does not parse)."""
    try:
        template = compiled(source, html=html)
    except TemplateError:
        return None
    try:
        return _PLAIN[template]
    except KeyError:
        plain = _PLAIN[template] = _plain_nodes(template.nodelist)
        return plain


def _plain_nodes(nodelist: Any) -> _Plain | None:
    text_bytes, line_break, lookups = 0, False, []
    for node in nodelist:
        # The library's instrumented subclasses render as these classes do (they only count).
        if isinstance(node, TextNode) and type(node).render is TextNode.render:
            try:
                text_bytes += len(node.s.encode())
            except UnicodeEncodeError:
                return None
            line_break = line_break or has_line_break(node.s)
        elif isinstance(node, VariableNode) and type(node).render is VariableNode.render:
            found = _plain_lookups(node.filter_expression)
            if found is None:
                return None
            lookups.append(found)
        else:
            return None
    return _Plain(text_bytes, line_break, tuple(lookups))


def _text_value(lookups: tuple[str, ...], context: dict[str, Any]) -> str | None:
    """The value Django's lookup finds when every step is a key of a plain dict (its first
    try), if that value is a plain `str`; None otherwise (an attribute, an index, a method, a
    missing name, a number: Django would do more than this knows)."""
    current: Any = context
    for bit in lookups:
        if type(current) is not dict or bit not in current:
            return None
        current = current[bit]
    return current if type(current) is str else None


def render_bound(
    *,
    subject: str = "",
    title: str = "",
    body: str = "",
    html: str = "",
    variables: Mapping[str, Any],
    recipient: Mapping[str, Any],
) -> RenderBound | None:
    """A bound on `render` with these arguments (notifier.rendering), or None when a part is
    not plain text and plain variables of `str` values."""
    context = {**variables, "recipient": recipient}  # as `render` builds its context
    total, subject_line_break = 0, False
    parts = ((subject, False), (title, False), (body, False), (html, True))
    for index, (source, escaped) in enumerate(parts):
        if not source:
            continue
        plain = _plain(source, escaped)
        if plain is None:
            return None
        total += plain.text_bytes
        line_break = plain.text_line_break
        for lookups in plain.lookups:
            value = _text_value(lookups, context)
            if value is None:
                return None
            if escaped:
                value = conditional_escape(value)
            try:
                total += len(value.encode())
            except UnicodeEncodeError:  # a lone surrogate: `render` fails on it, say nothing
                return None
            line_break = line_break or has_line_break(value)
        if index == 0:
            subject_line_break = line_break
    return RenderBound(total, subject_line_break)
