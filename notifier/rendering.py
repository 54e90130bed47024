"""Rendering of template variants with Django's template language, used standalone.

Email HTML is autoescaped; subjects, SMS, push and in-app text are plain text. Both engines
use our restricted library (template_library.py) and every render runs within limits
(template_limits.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType

from notifier.template_library import instrument
from notifier.template_limits import (
    RenderError,
    RenderLimitExceeded,
    RenderLimits,
    budget_scope,
)
from notifier.template_scope import required_names

_LIBRARY = "notifier.template_library"
_TEXT = Engine(autoescape=False, builtins=[_LIBRARY])
_HTML = Engine(autoescape=True, builtins=[_LIBRARY])
_LINE_BREAKS = re.compile(r"[\r\n]+")
# Tag delimiters: in a key's text (outside its tags) they are an unclosed or stray tag.
_DELIMITERS = ("{{", "}}", "{%", "%}", "{#", "#}")

# Names the service puts in every render context itself: never required from the caller.
# (`unsubscribe_url` and `preferences_url` are reserved for the unsubscribe pages.)
SERVICE_VARIABLES = frozenset({"recipient", "unsubscribe_url", "preferences_url"})
# Names a digest's render supplies (its joined items, how many joined, how many of them are in
# `items`): required from the caller like any other name when the notification is not a digest.
DIGEST_VARIABLES = frozenset({"items", "count", "shown"})

__all__ = [
    "DIGEST_VARIABLES",
    "SERVICE_VARIABLES",
    "RenderError",
    "RenderLimitExceeded",
    "RenderLimits",
    "Rendered",
    "TemplateError",
    "compiled",
    "key_expression_check",
    "render",
    "required_variables",
    "single_line",
]


class TemplateError(RenderError):
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
    Django template renders safely from several threads (each render has its own Context;
    the budget is per thread)."""
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(str(exc)) from exc
    instrument(template.nodelist)
    return template


def compiled(source: str, *, html: bool) -> Any:
    """`source` parsed as `render` renders it (HTML autoescaped), once per process and source;
    TemplateError when it does not parse."""
    return _compile(_HTML if html else _TEXT, source)


def single_line(value: str) -> str:
    """`value` with each run of CR and LF replaced by a space (a subject is a mail header)."""
    return _LINE_BREAKS.sub(" ", value)


def required_variables(
    sources: Iterable[str], *, provided: frozenset[str] = SERVICE_VARIABLES
) -> list[str]:
    """Top-level names the sources read from their caller, sorted: what they print, loop
    over, test or pass to filters, minus what the template binds itself and `provided`."""
    names: set[str] = set()
    for source in sources:
        if source:
            names |= required_names(_compile(_TEXT, source).nodelist)
    return sorted(names - provided)


def key_expression_check(source: str) -> None:
    """A key expression (a throttle's or a digest's) that parses and whose text holds no tag
    delimiter; TemplateError otherwise. Django's lexer reads an unclosed `{{ post_id ` as text,
    which would render literally: every notification would share one key."""
    _compile(_TEXT, source)
    for token in Lexer(source).tokenize():
        if token.token_type is not TokenType.TEXT:
            continue
        stray = next((d for d in _DELIMITERS if d in token.contents), None)
        if stray is not None:
            raise TemplateError(
                f"an unclosed or stray {stray!r} in {token.contents.strip()!r} "
                "(write {{ name }} or {% tag %})"
            )


def render(
    *,
    subject: str = "",
    title: str = "",
    body: str = "",
    html: str = "",
    variables: Mapping[str, Any],
    recipient: Mapping[str, Any],
    limits: RenderLimits | None = None,
) -> Rendered:
    """Render each part; HTML with autoescaping, the rest as plain text. All parts together
    stay within `limits` (default: RenderLimits()) or RenderLimitExceeded is raised."""
    limits = limits or RenderLimits()
    context = {**variables, "recipient": recipient}
    with budget_scope(limits) as budget:

        def part(engine: Engine, source: str, autoescape: bool) -> str:
            if not source:
                return ""
            output: str = _compile(engine, source).render(Context(context, autoescape=autoescape))
            if budget.exceeded is not None:  # raised inside a tag that swallowed it
                raise budget.exceeded
            return output

        rendered = Rendered(
            subject=part(_TEXT, subject, False).strip(),
            title=part(_TEXT, title, False).strip(),
            body=part(_TEXT, body, False),
            html=part(_HTML, html, True),
        )
    size = sum(len(p.encode()) for p in (rendered.subject, rendered.title, rendered.body))
    if size + len(rendered.html.encode()) > limits.max_output_bytes:
        raise RenderLimitExceeded(
            f"the rendered message would exceed {limits.max_output_bytes} bytes"
        )
    return rendered
