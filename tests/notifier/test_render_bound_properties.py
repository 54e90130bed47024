"""Properties of `render_bound` against `render` itself, over generated templates and values
(no database): what the bound accepts, the render accepts, and `render_check` answers as
`render` does."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.utils.safestring import SafeString
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.render_bound import render_bound
from notifier.rendering import (
    RenderLimits,
    SubjectLineBreak,
    render,
    render_check,
)

# The same examples on every run (CI included), few enough for a couple of seconds.
PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PARTS = ("subject", "title", "body", "html")

# Line breaks a mail header knows (CR, LF) and the ones it does not, HTML's specials, bytes
# that are more than one in UTF-8, NUL.
TEXT = st.text(alphabet="ab <>&'\"\r\n\u2028\x0b\x0c\x85\t é😀\x00", max_size=10)
# Template text: no tag delimiter, so a fragment is text and nothing else.
TEMPLATE_TEXT = TEXT.map(lambda s: s.replace("{", "(").replace("}", ")"))
PLAIN_VARIABLES = st.sampled_from(
    [
        "{{ a }}",
        "{{b}}",
        "{{ d.k }}",
        "{{ recipient.name }}",
        "{{ recipient.data.k }}",
        "{{ recipient.external_id }}",
    ]
)
PLAIN_TEMPLATE = st.lists(st.one_of(TEMPLATE_TEXT, PLAIN_VARIABLES), max_size=6).map("".join)
LIMIT = st.integers(0, 200)


def _breaks(subject: str) -> bool:
    # Written out here, not the library's has_line_break: the oracle must not share its bugs.
    return "\r" in subject or "\n" in subject


def _size(rendered: Any) -> int:
    return sum(len(getattr(rendered, part).encode()) for part in PARTS)


@PROPERTY
@given(
    parts=st.fixed_dictionaries(dict.fromkeys(PARTS, PLAIN_TEMPLATE)),
    a=TEXT,
    b=TEXT,
    dk=TEXT,
    name=TEXT,
    rk=TEXT,
    limit=LIMIT,
)
def test_what_the_bound_accepts_of_plain_templates_renders(
    parts: dict[str, str], a: str, b: str, dk: str, name: str, rk: str, limit: int
) -> None:
    variables = {"a": a, "b": b, "d": {"k": dk}}
    recipient = {"external_id": "u-1", "name": name, "locale": "en", "data": {"k": rk}}

    bound = render_bound(**parts, variables=variables, recipient=recipient)

    # Plain text, plain variables and `str` values: the bound always knows.
    assert bound is not None
    rendered = render(**parts, variables=variables, recipient=recipient)
    assert _size(rendered) <= bound.max_bytes
    assert bound.subject_line_break or not _breaks(rendered.subject)
    if bound.subject_line_break:
        return
    # The tightest limit the bound accepts, and the drawn one when it accepts that.
    for accepted in {bound.max_bytes, max(limit, bound.max_bytes)}:
        fits = render(
            **parts,
            variables=variables,
            recipient=recipient,
            limits=RenderLimits(max_output_bytes=accepted),
        )
        assert not _breaks(fits.subject)


NAMES = st.sampled_from(["a", "b", "True", "None", "recipient", "x0"])
VALUES = st.one_of(
    TEXT,
    TEXT.map(lambda s: s + "\ud800"),  # a lone surrogate: not encodable
    TEXT.map(SafeString),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.lists(TEXT, max_size=2),
    st.dictionaries(st.sampled_from(["k", "0"]), TEXT, max_size=2),
)
FRAGMENT = st.one_of(
    TEMPLATE_TEXT,
    PLAIN_VARIABLES,
    NAMES.map(lambda n: f"{{{{ {n} }}}}"),
    st.sampled_from(
        [
            "{{ recipient.data.0 }}",
            "{{ a.k }}",
            "{{ a.0 }}",
            "{{ a.upper }}",
            "{{ a.items }}",
            "{{ a|safe }}",
            "{{ a|upper }}",
            "{{ a|default:'z' }}",
            "{% autoescape off %}{{ a }}{% endautoescape %}",
            "{% autoescape on %}{{ b }}{% endautoescape %}",
            "{% if a %}y{% endif %}",
            "{% filter upper %}{{ a }}{% endfilter %}",
            "{% spaceless %} <b> </b> {% endspaceless %}",
            "{% with c=a %}{{ c }}{% endwith %}",
            "{% for i in a %}{{ i }}{% endfor %}",
            "{% firstof a b %}",
            "{% verbatim %}{{ a }}{% endverbatim %}",
            "{# c #}",
            "{% comment %}x{% endcomment %}",
            '{{ "l<>" }}',
            "{{ 1 }}",
            "{{ recipient }}",
            "{{ b.k.k }}",
            "{%",
            "{{",
            "}}",
        ]
    ),
)
TEMPLATE = st.lists(FRAGMENT, max_size=5).map("".join)


def _outcome(call: Any) -> tuple[str, bool]:
    """What a render answers: the exception's class (or "ok"), and a subject line break."""
    try:
        rendered = call()
    except SubjectLineBreak:
        return "ok", True
    except Exception as exc:
        return type(exc).__name__, False
    return "ok", rendered is not None and _breaks(rendered.subject)


@PROPERTY
@given(
    parts=st.fixed_dictionaries(dict.fromkeys(PARTS, TEMPLATE)),
    variables=st.dictionaries(NAMES, VALUES, max_size=5),
    recipient=st.fixed_dictionaries(
        {
            "external_id": TEXT,
            "name": st.one_of(TEXT, st.none()),
            "locale": st.just("en"),
            "data": st.dictionaries(st.sampled_from(["k", "0"]), VALUES, max_size=2),
        }
    ),
    limit=LIMIT,
)
def test_the_bound_never_accepts_what_the_render_refuses(
    parts: dict[str, str], variables: dict[str, Any], recipient: dict[str, Any], limit: int
) -> None:
    limits = RenderLimits(max_output_bytes=limit)
    arguments = {**parts, "variables": variables, "recipient": recipient}

    bound = render_bound(**arguments)  # never raises: anything it does not know is None
    rendered = _outcome(lambda: render(**arguments, limits=limits))
    checked = _outcome(lambda: render_check(**arguments, limits=limits))

    if bound is not None and bound.max_bytes <= limit and not bound.subject_line_break:
        assert rendered == ("ok", False)
    assert checked == rendered


def test_the_bound_accounts_for_every_render_limit() -> None:
    # render_bound claims a plain render fails on no limit but its size (no loop; the clock is
    # the render's own). A new limit, or a new check in `render`, needs render_bound revisited.
    names = {field.name for field in dataclasses.fields(RenderLimits)}

    assert names == {"max_output_bytes", "max_loop_iterations", "max_seconds"}, (
        "RenderLimits changed: revisit notifier/render_bound.py (does a plain render of text "
        "and str values still fail on nothing but its size?) and update this set."
    )
