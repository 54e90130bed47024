"""Durations as templates and requests write them: throttle windows, escalation delays and
digest windows all read "90s", "10m", "2h", "1d" or a sum of such parts ("1h30m"), in ASCII
digits (`\\d` would take a fullwidth or an Arabic-Indic digit, which int() then reads)."""

from __future__ import annotations

import datetime as dt
import re

# The OpenAPI schema's pattern, and the one this module checks.
DURATION_PATTERN = "^([0-9]{1,6}[smhd])+$"
_DURATION = re.compile(r"(?:[0-9]{1,6}[smhd])+")
_PART = re.compile(r"([0-9]+)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_DURATION = dt.timedelta(seconds=1)
MAX_DURATION = dt.timedelta(days=30)  # a window or a delay longer than this is a mistake
# Longer than any sensible sum ("30d23h59m59s" is 12): the regex and the sum stay cheap.
DURATION_MAX_LENGTH = 64


def parse_duration(
    value: object,
    *,
    minimum: dt.timedelta = MIN_DURATION,
    maximum: dt.timedelta = MAX_DURATION,
) -> dt.timedelta:
    """ "1h30m" -> 90 minutes, within [minimum, maximum]. ValueError with a message fit for the
    caller's 400 otherwise."""
    # fullmatch: no surrounding spaces, no final newline ("1h\n" is not a duration).
    if isinstance(value, str) and len(value) > DURATION_MAX_LENGTH:
        raise ValueError(f"a duration of at most {DURATION_MAX_LENGTH} characters")
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise ValueError('a duration such as "90s", "10m", "2h", "1d" or "1h30m"')
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in _PART.findall(value))
    # Compared as a number: a timedelta of a sum this long could overflow (OverflowError).
    if not minimum.total_seconds() <= seconds <= maximum.total_seconds():
        raise ValueError(f"between {format_duration(minimum)} and {format_duration(maximum)}")
    return dt.timedelta(seconds=seconds)


def stored_duration(value: str) -> dt.timedelta:
    """A duration this service checked and stored when it accepted it, read back without
    today's bounds (they may have tightened since)."""
    return dt.timedelta(seconds=sum(int(n) * UNIT_SECONDS[u] for n, u in _PART.findall(value)))


def format_duration(value: dt.timedelta) -> str:
    """The duration in its largest whole unit: 90 minutes -> "90m", a day -> "1d"."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"
