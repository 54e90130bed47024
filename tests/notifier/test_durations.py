"""One duration parser for throttle windows, escalation delays and digest windows: parts of
ASCII digits and a unit, summed ("1h30m"), within the caller's bounds."""

from __future__ import annotations

import datetime as dt

import pytest

from notifier.digests import DigestError, parse_digest
from notifier.durations import DURATION_PATTERN, parse_duration
from notifier.workflows import SpecError, escalation_parse, throttle_parse

# Fullwidth, Arabic-Indic and Devanagari digits: `\d` matches them, int() reads them.
UNICODE_DIGITS = ["\uff11m", "\u0663s", "1\u0966m", "\uff11h\uff13\uff10m"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations_are_parts_summed(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


NOT_DURATIONS = ["", "10", "m", "h", "1 h", "1.5h", "-1m", "10 minutes", "1h\n", " 1h", "1w"]


@pytest.mark.parametrize("text", [*UNICODE_DIGITS, *NOT_DURATIONS, "1234567s", 60, None])
def test_anything_else_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError, match="a duration such as"):
        parse_duration(text)


def test_bounds_are_the_callers() -> None:
    with pytest.raises(ValueError, match="between 1s and 7d"):
        parse_duration("8d", maximum=dt.timedelta(days=7))
    with pytest.raises(ValueError, match="between 1s and 30d"):
        parse_duration("0s")
    with pytest.raises(ValueError, match="between 1s and 30d"):
        parse_duration("30d1s")
    assert parse_duration("30d") == dt.timedelta(days=30)


@pytest.mark.parametrize("text", UNICODE_DIGITS)
def test_throttles_escalations_and_digests_refuse_unicode_digits(text: str) -> None:
    with pytest.raises(SpecError) as throttle:
        throttle_parse({"limit": 1, "window": text})
    with pytest.raises(SpecError) as escalation:
        escalation_parse([{"after": text, "channels": ["email"]}])
    with pytest.raises(DigestError) as digest:
        parse_digest({"window": text})

    assert set(throttle.value.fields) == {"window"}
    assert set(escalation.value.fields) == {"escalation[0].after"}
    assert set(digest.value.fields) == {"digest.window"}


def test_a_digest_window_may_be_a_sum_as_the_others() -> None:
    spec = parse_digest({"window": "1h30m"})

    assert spec is not None
    assert spec.window == dt.timedelta(minutes=90)
    assert throttle_parse({"limit": 1, "window": "1h30m"}).window == spec.window
    assert escalation_parse([{"after": "1h30m", "channels": ["email"]}])[0].after == spec.window


def test_the_schema_pattern_is_ascii_digits_and_units() -> None:
    assert DURATION_PATTERN == "^([0-9]{1,6}[smhd])+$"


def test_a_duration_too_long_to_hold_is_a_value_error_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="at most 64 characters"):
        parse_duration("999999d" * 1200)
    with pytest.raises(ValueError, match="at most 64 characters"):
        parse_duration("1s" * 33)  # 66 characters, a small sum all the same
    # Within the length, a sum past the maximum is refused by its number of seconds
    with pytest.raises(ValueError, match="between 1s and 30d"):
        parse_duration("999999d" * 9)
    assert parse_duration("1s" * 32) == dt.timedelta(seconds=32)
