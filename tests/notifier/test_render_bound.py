"""`render_bound` (no database): what it says of plain parts holds for `render` itself, and it
says nothing of the parts where Django would do more than print text."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.render_bound import render_bound
from notifier.rendering import (
    RenderLimitExceeded,
    RenderLimits,
    SubjectLineBreak,
    render,
    render_check,
)

RECIPIENT = {"external_id": "u-1", "name": "Ada", "locale": "en", "data": {"plan": "pro"}}


def _rendered_bytes(parts: dict[str, str], variables: dict[str, Any]) -> tuple[int, str]:
    rendered = render(**parts, variables=variables, recipient=RECIPIENT)
    texts = (rendered.subject, rendered.title, rendered.body, rendered.html)
    return sum(len(t.encode()) for t in texts), rendered.subject


@pytest.mark.parametrize(
    ("parts", "variables"),
    [
        ({"subject": "Order {{ id }} shipped", "body": "Hi {{ recipient.name }}"}, {"id": "A-1"}),
        ({"body": "Plan {{ recipient.data.plan }}: {{ id }}"}, {"id": "é" * 50}),
        ({"html": "<p>{{ id }}</p>"}, {"id": "<b>\"Tom\" & 'Jerry'</b>"}),
        ({"subject": "  {{ id }}  ", "title": " t ", "body": "b\n"}, {"id": "x"}),
        ({"subject": "S", "body": "{{ id }}"}, {"id": "line\r\nbreak"}),
        ({"subject": "Order {{ id }}"}, {"id": "A-1\r\nBcc: x@example.com"}),
        ({"subject": "Two\nlines"}, {}),
        ({"body": "{{ recipient }}"}, {"recipient": "ignored: the service's wins"}),
    ],
)
def test_a_bound_holds_for_the_render(parts: dict[str, str], variables: dict[str, Any]) -> None:
    bound = render_bound(**parts, variables=variables, recipient=RECIPIENT)

    size, subject = _rendered_bytes(parts, variables)

    if parts.get("body") == "{{ recipient }}":  # a dict: not a plain text value
        assert bound is None
        return
    assert bound is not None
    assert size <= bound.max_bytes
    # Exact, but for the spaces `render` strips from the subject and the title.
    stripped = sum(len(p) - len(p.strip()) for k, p in parts.items() if k in {"subject", "title"})
    assert bound.max_bytes - size == stripped
    # None of these subjects ends in a line break (`render` would strip it): exact.
    assert bound.subject_line_break is ("\r" in subject or "\n" in subject)


def test_html_escaping_is_counted() -> None:
    value = "<\"&'>"

    bound = render_bound(html="{{ v }}", variables={"v": value}, recipient=RECIPIENT)

    assert bound is not None
    assert bound.max_bytes == len("&lt;&quot;&amp;&#x27;&gt;")
    assert render(html="{{ v }}", variables={"v": value}, recipient=RECIPIENT).html == (
        "&lt;&quot;&amp;&#x27;&gt;"
    )


def test_a_bound_within_the_limit_means_the_render_fits() -> None:
    variables = {"text": "é" * 2048}  # 4,096 bytes, 2,048 characters
    bound = render_bound(body="{{ text }}", variables=variables, recipient=RECIPIENT)
    assert bound is not None
    assert bound.max_bytes == 4096

    fits = render(
        body="{{ text }}",
        variables=variables,
        recipient=RECIPIENT,
        limits=RenderLimits(max_output_bytes=4096),
    )
    with pytest.raises(RenderLimitExceeded):
        render(
            body="{{ text }}",
            variables=variables,
            recipient=RECIPIENT,
            limits=RenderLimits(max_output_bytes=4095),
        )

    assert len(fits.body.encode()) == 4096


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{ id|upper }}", {"id": "a"}),  # a filter
        ("{% if id %}{{ id }}{% endif %}", {"id": "a"}),  # a tag
        ("{% for i in ids %}{{ i }}{% endfor %}", {"ids": ["a"]}),
        ("{{ 'literal' }}", {}),
        ("{{ 12 }}", {}),
        ('{{ _("translated") }}', {}),
        ("{% comment %}x{% endcomment %}", {}),
        ("{{ id.upper }}", {"id": "a"}),  # a method Django would call
        ("{{ ids.0 }}", {"ids": ["a"]}),  # an index
        ("{{ ids.pop }}", {"ids": []}),  # a method that raises
        ("{{ missing }}", {}),  # Django would look further (the context's attributes)
        ("{{ autoescape }}", {}),
        ("{{ None }}", {}),
        ("{{ n }}", {"n": 1234567}),  # numbers are localised
        ("{{ n }}", {"n": 1.5}),
        ("{{ b }}", {"b": True}),
        ("{{ v }}", {"v": None}),
        ("{{ v }}", {"v": {"a": "b"}}),
        ("{{ v }}", {"v": ["a"]}),
        ("{{ v }}", {"v": "\ud800"}),  # a lone surrogate: the render fails on it
        ("{{ recipient.data }}", {}),
        ("{{ recipient.nope }}", {}),
        ("{% broken", {}),  # does not parse: text to Django, but not ours to judge
    ],
)
def test_no_bound_where_django_does_more_than_print_text(
    source: str, variables: dict[str, Any]
) -> None:
    bound = render_bound(body=source, variables=variables, recipient=RECIPIENT)

    if source == "{% broken":  # Django's lexer reads an unclosed tag as text
        assert bound is not None
        assert bound.max_bytes == len(source)
        return
    assert bound is None


def test_a_part_that_is_not_plain_spoils_the_whole_bound() -> None:
    plain = {"subject": "Order {{ id }}", "body": "Hi"}

    assert render_bound(**plain, variables={"id": "1"}, recipient=RECIPIENT) is not None
    assert (
        render_bound(**plain, html="{{ id|upper }}", variables={"id": "1"}, recipient=RECIPIENT)
        is None
    )


@pytest.mark.parametrize("value", ["A-1\rBcc: x@example.com", "A-1\nBcc: x", "A\r\nB"])
def test_a_line_break_in_a_subject_value_is_refused(value: str) -> None:
    arguments: dict[str, Any] = {"subject": "Order {{ id }}", "variables": {"id": value}}

    bound = render_bound(**arguments, recipient=RECIPIENT)
    subject = render(**arguments, recipient=RECIPIENT).subject

    assert bound is not None
    assert bound.subject_line_break is True
    assert subject == f"Order {value}"
    with pytest.raises(SubjectLineBreak):
        render_check(**arguments, recipient=RECIPIENT, limits=RenderLimits())


@pytest.mark.parametrize("name", ["Ada\rBcc: x@example.com", "Ada\nLovelace"])
def test_a_line_break_in_the_recipients_name_in_the_subject_is_refused(name: str) -> None:
    recipient = {**RECIPIENT, "name": name}

    bound = render_bound(subject="Hi {{ recipient.name }}", variables={}, recipient=recipient)

    assert bound is not None
    assert bound.subject_line_break is True
    with pytest.raises(SubjectLineBreak):
        render_check(
            subject="Hi {{ recipient.name }}",
            variables={},
            recipient=recipient,
            limits=RenderLimits(),
        )
    # In the body it is only text.
    render_check(
        body="Hi {{ recipient.name }}", variables={}, recipient=recipient, limits=RenderLimits()
    )


def test_non_ascii_template_text_counts_its_bytes_at_the_limit() -> None:
    body = "é" * 10 + "😀 {{ id }}"  # 20 + 4 + 1 bytes of text (12 characters), 1 of value
    arguments: dict[str, Any] = {"body": body, "variables": {"id": "x"}, "recipient": RECIPIENT}

    bound = render_bound(**arguments)

    assert bound is not None
    assert bound.max_bytes == 26
    render_check(**arguments, limits=RenderLimits(max_output_bytes=26))
    with pytest.raises(RenderLimitExceeded):
        render_check(**arguments, limits=RenderLimits(max_output_bytes=25))
    with pytest.raises(RenderLimitExceeded):
        render(**arguments, limits=RenderLimits(max_output_bytes=25))
