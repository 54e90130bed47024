"""Digest rules without the ORM: durations, declarations, cadences, window close times and the
precedence of request, recipient and template."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from notifier.digests import (
    DigestError,
    DigestSpec,
    cadence_close,
    digest_plan,
    parse_cadence,
    parse_digest,
)

NOW = dt.datetime(2026, 3, 7, 23, 30, 15, tzinfo=dt.UTC)


def test_a_declaration_is_parsed_with_defaults() -> None:
    assert parse_digest({"window": "1h"}) == DigestSpec(window=dt.timedelta(hours=1))
    assert parse_digest({"window": "2s", "key": "{{ post_id }}", "max_items": 3}) == DigestSpec(
        window=dt.timedelta(seconds=2), key="{{ post_id }}", max_items=3
    )
    assert parse_digest(False) is None
    assert parse_digest(None) is None


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ({}, {"digest.window"}),
        ({"window": "0s"}, {"digest.window"}),
        ({"window": "8d"}, {"digest.window"}),
        ({"window": "6d23h61m"}, {"digest.window"}),
        ({"window": "1h", "max_items": 0}, {"digest.max_items"}),
        ({"window": "1h", "max_items": True}, {"digest.max_items"}),
        ({"window": "1h", "max_items": "5"}, {"digest.max_items"}),
        ({"window": "1h", "key": 5}, {"digest.key"}),
        ({"window": "1h", "key": None}, {"digest.key"}),
        ({"window": "1h", "key": "{% if post_id %}"}, {"digest.key"}),
        ({"window": "1h", "key": "{{ post_id "}, {"digest.key"}),
        ({"window": "1h", "key": "{{ x"}, {"digest.key"}),
        ({"window": "1h", "key": "p }}"}, {"digest.key"}),
        ({"window": "1h", "every": "1h"}, {"digest"}),
        ({"window": "x", "max_items": 501}, {"digest.window", "digest.max_items"}),
        (True, {"digest"}),
        ("1h", {"digest"}),
    ],
)
def test_a_bad_declaration_names_each_bad_part(value: object, fields: set[str]) -> None:
    with pytest.raises(DigestError) as caught:
        parse_digest(value)
    assert set(caught.value.fields) == fields


@pytest.mark.parametrize("value", ["hourly", "off", "daily@00:00", "daily@09:30", "daily@23:59"])
def test_cadences(value: str) -> None:
    assert parse_cadence(value) == value


@pytest.mark.parametrize(
    "value", ["weekly", "daily", "daily@24:00", "daily@9:00", "Hourly", 1, "hourly\n"]
)
def test_bad_cadences(value: object) -> None:
    with pytest.raises(ValueError, match="hourly"):
        parse_cadence(value)


def test_daily_closes_at_the_next_local_time_in_the_recipients_timezone() -> None:
    # 23:30 UTC is 08:30 on the 8th in Tokyo: 09:00 Tokyo is half an hour away
    tokyo = cadence_close("daily@09:00", timezone="Asia/Tokyo", now=NOW)
    assert tokyo == dt.datetime(2026, 3, 8, 0, 0, tzinfo=dt.UTC)
    # and 18:30 on the 7th (EST) in New York: tomorrow's 09:00 there, by then EDT (UTC-4)
    new_york = cadence_close("daily@09:00", timezone="America/New_York", now=NOW)
    assert new_york == dt.datetime(2026, 3, 8, 13, 0, tzinfo=dt.UTC)
    berlin = cadence_close("daily@09:00", timezone="Europe/Berlin", now=NOW)
    assert berlin == dt.datetime(2026, 3, 8, 8, 0, tzinfo=dt.UTC)
    # exactly at the time: the next day's
    at_nine = dt.datetime(2026, 3, 8, 0, 0, tzinfo=dt.UTC)
    assert cadence_close(
        "daily@09:00", timezone="Asia/Tokyo", now=at_nine
    ) == at_nine + dt.timedelta(days=1)


def test_daily_across_a_daylight_saving_change_keeps_the_wall_clock_time() -> None:
    # New York springs forward on 2026-03-08: 09:00 EDT is 13:00 UTC that day
    before = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)  # 08:00 EDT
    close = cadence_close("daily@09:00", timezone="America/New_York", now=before)
    assert close == dt.datetime(2026, 3, 8, 13, 0, tzinfo=dt.UTC)
    assert close.astimezone(ZoneInfo("America/New_York")).hour == 9
    # a wall time the change skips (02:30) closes an hour later on the clock, 07:30 UTC
    night = dt.datetime(2026, 3, 8, 6, 0, tzinfo=dt.UTC)  # 01:00 EST
    skipped = cadence_close("daily@02:30", timezone="America/New_York", now=night)
    assert skipped == dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC)


def test_hourly_across_the_fall_back_closes_at_the_next_real_hour() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice (EDT, then EST)
    first = dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)  # 01:30 EDT
    second = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)  # 01:30 EST
    assert cadence_close("hourly", timezone="America/New_York", now=first) == dt.datetime(
        2026, 11, 1, 6, 0, tzinfo=dt.UTC
    )
    assert cadence_close("hourly", timezone="America/New_York", now=second) == dt.datetime(
        2026, 11, 1, 7, 0, tzinfo=dt.UTC
    )


def test_hourly_closes_at_the_next_full_hour_on_the_local_clock() -> None:
    assert cadence_close("hourly", timezone="UTC", now=NOW) == dt.datetime(
        2026, 3, 8, 0, 0, tzinfo=dt.UTC
    )
    # India is UTC+5:30: its hours start at :30 UTC
    assert cadence_close("hourly", timezone="Asia/Kolkata", now=NOW) == dt.datetime(
        2026, 3, 7, 23, 30, tzinfo=dt.UTC
    ) + dt.timedelta(hours=1)


SPEC = DigestSpec(window=dt.timedelta(minutes=10), key="{{ post_id }}", max_items=7)


def plan(**overrides: object) -> object:
    given: dict[str, object] = {
        "declared": SPEC,
        "request_off": False,
        "cadences": {},
        "category": "social",
        "priority": "normal",
        "timezone": "Asia/Tokyo",
        "now": NOW,
    }
    return digest_plan(**{**given, **overrides})  # type: ignore[arg-type]


def test_the_template_or_request_window_runs_from_now() -> None:
    result = plan()
    assert result is not None
    assert (result.key, result.max_items, result.cadence) == ("{{ post_id }}", 7, "")  # type: ignore[attr-defined]
    assert result.closes_at == NOW + dt.timedelta(minutes=10)  # type: ignore[attr-defined]


def test_critical_false_and_off_are_never_digested_and_no_declaration_no_digest() -> None:
    assert plan(priority="critical") is None
    assert plan(priority="critical", cadences={"social": "hourly"}) is None
    assert plan(request_off=True, cadences={"social": "hourly"}) is None
    assert plan(cadences={"social": "off"}) is None
    assert plan(declared=None) is None


def test_the_recipients_cadence_decides_the_close_only_where_a_digest_is_declared() -> None:
    daily = plan(cadences={"social": "daily@09:00"})
    assert daily.closes_at == dt.datetime(2026, 3, 8, 0, 0, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert daily.cadence == "daily@09:00"  # type: ignore[attr-defined]
    assert daily.key == "{{ post_id }}"  # type: ignore[attr-defined]
    # a template or request declaring no digest is never batched by a cadence
    assert plan(declared=None, cadences={"social": "hourly"}) is None
    # another category's cadence does not apply
    assert plan(cadences={"marketing": "daily@09:00"}).cadence == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["daily@\uff10\uff19:30", "daily@09:\u0663\u0660"])
def test_a_cadence_in_other_digits_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="daily@HH:MM"):
        parse_cadence(value)
