"""Rendering of template variants with Django's template language, used standalone.

Email HTML is autoescaped; subjects, SMS, push and in-app text are plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Variable, VariableNode

_TEXT = Engine(autoescape=False)
_HTML = Engine(autoescape=True)

# Provided by the service itself, never required from the caller.
BUILTIN_NAMES = frozenset({"recipient"})


class TemplateError(ValueError):
    """A template source that does not parse."""


@dataclass(frozen=True)
class Rendered:
    subject: str = ""
    title: str = ""
    body: str = ""
    html: str = ""


@lru_cache(maxsize=1024)
def _compile(engine: Engine, source: str) -> Any:
    """Parse once per process and source: template versions are immutable, and a compiled
    Django template renders safely from several threads (each render has its own Context)."""
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(str(exc)) from exc


def variables_used(sources: Iterable[str]) -> list[str]:
    """Top-level names the sources print with `{{ name }}` (excluding built-ins), sorted."""
    names: set[str] = set()
    for source in sources:
        if not source:
            continue
        for node in _compile(_TEXT, source).nodelist.get_nodes_by_type(VariableNode):
            var = node.filter_expression.var
            if isinstance(var, Variable) and var.lookups:
                names.add(var.lookups[0])
    return sorted(names - BUILTIN_NAMES)


def render(
    *,
    subject: str = "",
    title: str = "",
    body: str = "",
    html: str = "",
    variables: Mapping[str, Any],
    recipient: Mapping[str, Any],
) -> Rendered:
    """Render each part; HTML with autoescaping, the rest as plain text."""
    context = {**variables, "recipient": recipient}

    def text(source: str) -> str:
        return _compile(_TEXT, source).render(Context(context, autoescape=False)) if source else ""

    rendered_html = _compile(_HTML, html).render(Context(context)) if html else ""
    return Rendered(
        subject=text(subject).strip(),
        title=text(title).strip(),
        body=text(body),
        html=rendered_html,
    )
