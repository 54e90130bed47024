"""Send-time optimisation: the next moment, within a day, at the recipient's most engaged hour.

The history is a count of the recipient's opens, clicks and reads by hour of their local day
(0-23). With fewer than `minimum` of them there is nothing to learn from: the caller sends at
once. Otherwise the most engaged hour wins (on a tie, the one that comes first from now), and
the send goes at the start of its next occurrence, or now when that hour is under way. Quiet
hours are the caller's to apply after (routing.quiet_hours_end), as for any send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

HOURS = range(24)


def best_hour(counts: Mapping[int, int], *, minimum: int, local_now: dt.datetime) -> int | None:
    """The hour (0-23) to send at, or None for too little history."""
    if sum(counts.get(hour, 0) for hour in HOURS) < max(1, minimum):
        return None
    top = max(counts.get(hour, 0) for hour in HOURS)
    # Hours in the order they come from now: this hour first, then the next, around the clock
    upcoming = [(local_now.hour + step) % 24 for step in HOURS]
    return next(hour for hour in upcoming if counts.get(hour, 0) == top)


def best_time(
    counts: Mapping[int, int], *, now: dt.datetime, timezone: str, minimum: int
) -> dt.datetime | None:
    """When to send (aware, UTC), at most 24 hours from `now` (aware); None: send now, the
    history is too thin to choose."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    hour = best_hour(counts, minimum=minimum, local_now=local_now)
    if hour is None:
        return None
    if hour == local_now.hour:
        return now.astimezone(dt.UTC)
    day = local_now.date() + dt.timedelta(days=0 if hour > local_now.hour else 1)
    # A wall-clock hour a DST change skips lands an hour later (zoneinfo's reading of fold=0).
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=zone)
    return local.astimezone(dt.UTC)
