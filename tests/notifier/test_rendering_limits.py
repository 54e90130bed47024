"""Rendering limits and forbidden tags (no database): a template cannot exhaust a process."""

from __future__ import annotations

import time
from typing import Any

import pytest

from notifier.rendering import (
    RenderLimitExceeded,
    RenderLimits,
    TemplateError,
    render,
    required_variables,
    single_line,
)

THREE_DEEP = (
    "{% for a in rows %}{% for b in rows %}{% for c in rows %}{{ c }}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
SMALL = RenderLimits(max_output_bytes=4096, max_loop_iterations=1000, max_seconds=2.0)


@pytest.mark.parametrize(
    "source",
    [
        "{% debug %}",
        "{% load %}",
        "{% load humanize %}",
        "{% include 'notifier/x.html' %}",
        "{% extends 'base.html' %}",
        "{% ssi '/etc/passwd' %}",
        "{% lorem 999999 w %}",
        "{% if x %}{% debug %}{% endif %}",
    ],
)
def test_tags_that_read_files_or_dump_state_do_not_parse(source: str) -> None:
    with pytest.raises(TemplateError, match="is not allowed in templates"):
        required_variables([source])


def test_three_deep_loop_over_100_items_stops_at_the_iteration_budget() -> None:
    # A million iterations asked for; the default budget of 50,000 stops it (the time limit is
    # set out of reach, so that a busy machine cannot make the clock trip first)
    limits = RenderLimits(max_seconds=600.0)

    with pytest.raises(RenderLimitExceeded, match="more than 50000 iterations"):
        render(body=THREE_DEEP, variables={"rows": list(range(100))}, recipient={}, limits=limits)


def test_an_empty_nested_loop_is_counted_too() -> None:
    source = "{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}"

    with pytest.raises(RenderLimitExceeded, match="iterations"):
        render(body=source, variables={"rows": list(range(100))}, recipient={}, limits=SMALL)
    assert render(body=source, variables={"rows": list(range(30))}, recipient={}, limits=SMALL)


def test_output_past_the_limit_is_stopped_while_it_grows() -> None:
    variables = {"rows": list(range(900)), "big": "x" * 1000}

    with pytest.raises(RenderLimitExceeded, match="exceed 4096 bytes"):
        render(
            body="{% for r in rows %}{{ big }}{% endfor %}",
            variables=variables,
            recipient={},
            limits=SMALL,
        )


def test_output_just_under_the_limit_renders() -> None:
    rendered = render(body="{{ text }}", variables={"text": "é" * 2048}, recipient={}, limits=SMALL)

    assert len(rendered.body.encode()) == 4096
    with pytest.raises(RenderLimitExceeded):
        render(body="{{ text }}!", variables={"text": "é" * 2048}, recipient={}, limits=SMALL)


def test_the_parts_of_a_message_share_one_limit() -> None:
    half = "x" * 2500

    with pytest.raises(RenderLimitExceeded):
        render(subject="{{ t }}", body="{{ t }}", variables={"t": half}, recipient={}, limits=SMALL)


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{ x|ljust:width }}", {"x": "a", "width": 999_999_999}),
        ("{{ x|rjust:'999999999' }}", {"x": "a"}),
        ("{{ x|center:width }}", {"x": "a", "width": 999_999_999}),
        ("{{ x|stringformat:'0999999999d' }}", {"x": 1}),
        ("{{ x|floatformat:999999999 }}", {"x": 1}),
        ("{{ rows|join:sep }}", {"rows": list(range(1000)), "sep": "x" * 1000}),
        (
            "{% with a=s|add:s %}{% with b=a|add:a %}{{ b }}{% endwith %}{% endwith %}",
            {"s": "x" * 1500},
        ),
        ("{% if x|ljust:width %}yes{% endif %}", {"x": "a", "width": 999_999_999}),
        ("{% filter ljust:width %}x{% endfilter %}", {"width": 999_999_999}),
    ],
)
def test_filters_that_size_their_output_by_an_argument_are_refused_before_allocating(
    source: str, variables: dict[str, Any]
) -> None:
    started = time.monotonic()

    with pytest.raises(RenderLimitExceeded):
        render(body=source, variables=variables, recipient={}, limits=SMALL)

    assert time.monotonic() - started < 1.0


def test_ordinary_filters_still_work() -> None:
    source = (
        "{{ x|floatformat:2 }}|{{ name|ljust:6 }}|{{ rows|join:', ' }}|{{ n|stringformat:'03d' }}"
    )
    variables = {"x": 1.234, "name": "Ada", "rows": ["1", "2"], "n": 7}

    assert render(body=source, variables=variables, recipient={}).body == "1.23|Ada   |1, 2|007"


def test_a_wall_clock_budget_stops_a_slow_render() -> None:
    limits = RenderLimits(max_output_bytes=10**7, max_loop_iterations=10**7, max_seconds=0.05)
    started = time.monotonic()

    with pytest.raises(RenderLimitExceeded, match=r"longer than 0\.05 s"):
        render(body=THREE_DEEP, variables={"rows": list(range(200))}, recipient={}, limits=limits)

    assert time.monotonic() - started < 1.0


def test_single_line_replaces_line_breaks() -> None:
    assert single_line("Order\r\nBcc: x@example.com\n\nshipped") == (
        "Order Bcc: x@example.com shipped"
    )
