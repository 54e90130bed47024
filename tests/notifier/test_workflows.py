"""Parsing throttles and escalation steps, and which statuses meet an `unless`."""

from __future__ import annotations

import datetime as dt

import pytest

from notifier.workflows import (
    EscalationStep,
    SpecError,
    Throttle,
    escalation_parse,
    throttle_parse,
    unless_met,
)


def test_throttle_parses_and_renders_its_key() -> None:
    throttle = throttle_parse({"limit": 2, "window": "10m", "key": "{{ thread_id }}"})

    assert throttle == Throttle(limit=2, window=dt.timedelta(minutes=10), key="{{ thread_id }}")
    assert throttle.key_for({"thread_id": "t-9"}) == "t-9"
    assert throttle.as_json() == {"limit": 2, "window": "10m", "key": "{{ thread_id }}"}


def test_throttle_errors_name_each_part() -> None:
    with pytest.raises(SpecError) as caught:
        throttle_parse({"limit": 0, "window": "soon", "key": "{% if %}", "extra": 1})

    assert set(caught.value.fields) == {"throttle", "limit", "window", "key"}
    assert caught.value.fields["throttle"] == ["unknown field 'extra'"]


@pytest.mark.parametrize("value", [None, [], "1/10m", {"limit": True, "window": "1m"}])
def test_throttle_rejects_other_shapes(value: object) -> None:
    with pytest.raises(SpecError):
        throttle_parse(value)


def test_escalation_steps_parse_with_read_as_the_default_unless() -> None:
    steps = escalation_parse(
        [{"after": "30m", "channels": ["email"]}, {"after": "2h", "channels": ["sms"]}]
    )

    assert steps == [
        EscalationStep(after=dt.timedelta(minutes=30), channels=("email",), unless="read"),
        EscalationStep(after=dt.timedelta(hours=2), channels=("sms",), unless="read"),
    ]


def test_escalation_errors_name_the_step_and_part() -> None:
    with pytest.raises(SpecError) as caught:
        escalation_parse(
            [
                {"after": "later", "channels": ["email"]},
                {"after": "1h", "channels": ["email", "fax"], "unless": "liked"},
                {"after": "2h", "channels": ["email"]},
            ]
        )

    assert set(caught.value.fields) == {
        "escalation[0].after",
        "escalation[1].channels",
        "escalation[1].unless",
        "escalation[2].channels",
    }
    assert caught.value.fields["escalation[2].channels"] == ["email is already in an earlier step"]


def test_escalation_has_at_most_five_steps() -> None:
    steps = [{"after": f"{n}m", "channels": ["email"]} for n in range(1, 7)]
    with pytest.raises(SpecError, match="at most 5 steps"):
        escalation_parse(steps)


def test_engagement_meets_every_unless_and_delivered_only_delivered() -> None:
    for unless in ("delivered", "opened", "clicked", "read", "seen"):
        assert unless_met(unless, ["sent", "opened"])
        assert unless_met(unless, ["read"])
        assert not unless_met(unless, ["sent", "queued", "failed"])
    assert unless_met("delivered", ["delivered"])
    assert not unless_met("read", ["delivered"])
    # `seen` (the bell opened) meets `seen` and `delivered` only
    assert unless_met("seen", ["seen"])
    assert unless_met("delivered", ["seen"])
    assert not unless_met("read", ["seen"])


@pytest.mark.parametrize("key", ["{{ post_id ", "{{ x", "x }}", "{% if x", "a %}", "{# c"])
def test_a_throttle_key_with_an_unterminated_or_stray_delimiter_is_refused(key: str) -> None:
    with pytest.raises(SpecError) as caught:
        throttle_parse({"limit": 1, "window": "1m", "key": key})

    assert set(caught.value.fields) == {"key"}
    assert "unclosed or stray" in caught.value.fields["key"][0]
