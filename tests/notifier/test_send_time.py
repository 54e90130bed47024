"""best_time: the next start of the recipient's most engaged local hour (notifier/send_time.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from notifier.routing import quiet_hours
from notifier.send_time import best_hour, best_time

UTC = dt.UTC
# Seeded history: mostly evenings at 19:00 local, a few mornings
HISTORY = {19: 12, 8: 3, 12: 1}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Berlin is UTC+1 in winter: 09:00 UTC is 10:00 local -> today 19:00 local = 18:00 UTC
        ("2026-12-01T09:00:00", "2026-12-01T18:00:00"),
        # 20:00 local: 19:00 has passed -> tomorrow's
        ("2026-12-01T19:00:00", "2026-12-02T18:00:00"),
        # 19:40 local: the hour is under way -> now
        ("2026-12-01T18:40:00", "2026-12-01T18:40:00"),
    ],
)
def test_the_next_start_of_the_most_engaged_hour(now: str, expected: str) -> None:
    chosen = best_time(HISTORY, now=at(now), timezone="Europe/Berlin", minimum=10)

    assert chosen == at(expected)
    assert dt.timedelta(0) <= chosen - at(now) <= dt.timedelta(hours=24)


def test_too_little_history_sends_now() -> None:
    assert (
        best_time({19: 4, 8: 5}, now=at("2026-12-01T09:00:00"), timezone="UTC", minimum=10) is None
    )
    assert best_time({}, now=at("2026-12-01T09:00:00"), timezone="UTC", minimum=0) is None


def test_a_tie_goes_to_the_hour_that_comes_first() -> None:
    ties = {7: 5, 21: 5}
    ten_pm = dt.datetime(2026, 12, 1, 22, tzinfo=UTC)
    six_am = dt.datetime(2026, 12, 1, 6, tzinfo=UTC)

    assert best_hour(ties, minimum=1, local_now=ten_pm) == 7
    assert best_hour(ties, minimum=1, local_now=six_am) == 7
    assert best_hour(ties, minimum=1, local_now=six_am.replace(hour=8)) == 21


def test_across_a_dst_change_the_local_hour_holds() -> None:
    # Berlin leaves summer time on 2026-10-25: 19:00 local is 17:00 UTC the day before and
    # 18:00 UTC on the day
    chosen = best_time(HISTORY, now=at("2026-10-24T20:00:00"), timezone="Europe/Berlin", minimum=10)

    assert chosen == at("2026-10-25T18:00:00")


def test_excluded_hours_are_passed_over_for_the_next_most_engaged() -> None:
    # 19:00 is inside quiet hours: 08:00 (3) is the most engaged hour left
    chosen = best_time(
        HISTORY,
        now=at("2026-12-01T02:00:00"),
        timezone="UTC",
        minimum=10,
        excluded=frozenset({22, 23, *range(0, 8), 19}),
    )

    assert chosen == at("2026-12-01T08:00:00")


def test_with_every_engaged_hour_excluded_the_best_one_stands() -> None:
    # Nothing outside the quiet hours to learn from: the best hour, deferred at send
    ten_am = dt.datetime(2026, 12, 1, 10, tzinfo=UTC)

    assert best_hour(HISTORY, minimum=10, local_now=ten_am, excluded=frozenset({19, 8, 12})) == 19


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (dt.time(22), dt.time(7), {22, 23, 0, 1, 2, 3, 4, 5, 6}),
        (dt.time(13), dt.time(15), {13, 14}),
        # A window that starts after an hour's start leaves that hour out; one that ends after
        # an hour's start takes it in (its start is quiet)
        (dt.time(13, 30), dt.time(15, 10), {14, 15}),
        (dt.time(9), dt.time(9), set()),
        (None, dt.time(7), set()),
    ],
)
def test_quiet_hours_as_local_hours(start: dt.time | None, end: dt.time, hours: set[int]) -> None:
    assert quiet_hours(start, end) == frozenset(hours)
