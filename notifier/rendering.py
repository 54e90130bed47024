"""Rendering of template variants with Django's template language, used standalone.

Email HTML is autoescaped; subjects, SMS, push and in-app text are plain text. Both engines
(template_compile.py) use our restricted library (template_library.py) and every render runs
within limits (template_limits.py). `render_check` is the one place that decides whether a
render can be skipped (render_bound.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.template import Context
from django.template.base import Lexer, TokenType

from notifier.render_bound import has_line_break, render_bound
from notifier.template_compile import TemplateError, compiled
from notifier.template_limits import (
    RenderError,
    RenderLimitExceeded,
    RenderLimits,
    budget_scope,
)
from notifier.template_scope import required_names

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
    "SubjectLineBreak",
    "TemplateError",
    "compiled",
    "has_line_break",
    "key_expression_check",
    "render",
    "render_check",
    "required_variables",
    "single_line",
]


class SubjectLineBreak(RenderError):
    """A subject that renders with a CR or LF in it: as a mail header it would end there."""


@dataclass(frozen=True)
class Rendered:
    subject: str = ""
    title: str = ""
    body: str = ""
    html: str = ""


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
            names |= required_names(compiled(source, html=False).nodelist)
    return sorted(names - provided)


def key_expression_check(source: str) -> None:
    """A key expression (a throttle's or a digest's) that parses and whose text holds no tag
    delimiter; TemplateError otherwise. Django's lexer reads an unclosed `{{ post_id ` as text,
    which would render literally: every notification would share one key."""
    compiled(source, html=False)
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
    # `render_check` skips this for parts render_bound can add up: a check added here is a
    # check render_bound must account for too (tests/notifier/test_render_bound.py guards it).
    limits = limits or RenderLimits()
    context = {**variables, "recipient": recipient}
    with budget_scope(limits) as budget:

        def part(source: str, autoescape: bool) -> str:
            if not source:
                return ""
            template = compiled(source, html=autoescape)
            output: str = template.render(Context(context, autoescape=autoescape))
            if budget.exceeded is not None:  # raised inside a tag that swallowed it
                raise budget.exceeded
            return output

        rendered = Rendered(
            subject=part(subject, False).strip(),
            title=part(title, False).strip(),
            body=part(body, False),
            html=part(html, True),
        )
    size = sum(len(p.encode()) for p in (rendered.subject, rendered.title, rendered.body))
    if size + len(rendered.html.encode()) > limits.max_output_bytes:
        raise RenderLimitExceeded(
            f"the rendered message would exceed {limits.max_output_bytes} bytes"
        )
    return rendered


def render_check(
    *,
    subject: str = "",
    title: str = "",
    body: str = "",
    html: str = "",
    variables: Mapping[str, Any],
    recipient: Mapping[str, Any],
    limits: RenderLimits,
) -> None:
    """Raise what `render` raises with these arguments, or SubjectLineBreak when the subject it
    renders breaks a line. Parts render_bound can add up (text and plain variables of `str`
    values) are not rendered when they provably fit on one subject line: the same answer."""
    parts = {"subject": subject, "title": title, "body": body, "html": html}
    bound = render_bound(**parts, variables=variables, recipient=recipient)
    if (
        bound is not None
        and bound.max_bytes <= limits.max_output_bytes
        and not bound.subject_line_break
    ):
        return
    rendered = render(**parts, variables=variables, recipient=recipient, limits=limits)
    if has_line_break(rendered.subject):
        raise SubjectLineBreak("the subject renders with a line break (CR or LF)")
