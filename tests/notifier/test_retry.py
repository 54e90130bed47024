"""The retry policy: exponential backoff with full jitter, Retry-After honoured, capped."""

from __future__ import annotations

import random

import pytest

from notifier.errors import parse_retry_after
from notifier.retry import RetryPolicy

POLICY = RetryPolicy(base_seconds=2.0, cap_seconds=60.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (20, 60.0)]
)
def test_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert POLICY.ceiling(attempt) == ceiling


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8])
def test_full_jitter_stays_within_zero_and_the_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)  # noqa: S311 - seeded, for repeatable draws
    delays = [POLICY.delay(attempt, rng=rng) for _ in range(2000)]

    assert min(delays) >= 0
    assert max(delays) <= POLICY.ceiling(attempt)
    # Full jitter spreads over the whole range, not around the ceiling.
    assert min(delays) < POLICY.ceiling(attempt) * 0.05
    assert max(delays) > POLICY.ceiling(attempt) * 0.95


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(1)  # noqa: S311 - seeded, for repeatable draws
    delays = [POLICY.delay(1, retry_after=7.0, rng=rng) for _ in range(500)]

    assert min(delays) == 7.0
    assert max(delays) == 7.0  # ceiling of attempt 1 is 2 s, below Retry-After


def test_retry_after_below_the_jitter_does_not_shorten_it() -> None:
    rng = random.Random(2)  # noqa: S311 - seeded, for repeatable draws
    delays = [POLICY.delay(6, retry_after=1.0, rng=rng) for _ in range(500)]

    assert min(delays) >= 1.0
    assert max(delays) > 30


def test_cap_bounds_even_a_longer_retry_after() -> None:
    assert POLICY.delay(1, retry_after=3600.0) == 60.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), (" 7 ", 7.0), ("0.5", 0.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


# 2015-10-21 07:28:00 UTC, the date in RFC 9110's example.
DATE_NOW = 1445412480.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:05 2015", 5.0),  # asctime, no zone: GMT
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # already past
        ("Wed, 32 Oct 2015 07:28:30 GMT", None),
    ],
)
def test_parse_retry_after_http_date(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, now=DATE_NOW) == seconds
