"""Send-time optimisation: the next moment, within a day, at the recipient's most engaged hour.

The history is a count of the recipient's opens, clicks and reads by hour of their local day
(0-23). With fewer than `minimum` of them there is nothing to learn from: the caller sends at
once. Otherwise the most engaged hour wins (on a tie, the one that comes first from now), and
the send goes at the start of its next occurrence, or now when that hour is under way. Hours
the caller excludes (the recipient's quiet hours, routing.quiet_hours) are passed over for the
most engaged hour left; when no engaged hour is left the best one stands (quiet hours then defer
the send at its time, routing.quiet_hours_end, as for any send).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from zoneinfo import ZoneInfo

HOURS = range(24)


def best_hour(
    counts: Mapping[int, int],
    *,
    minimum: int,
    local_now: dt.datetime,
    excluded: AbstractSet[int] = frozenset(),
) -> int | None:
    """The hour (0-23) to send at, or None for too little history."""
    if sum(counts.get(hour, 0) for hour in HOURS) < max(1, minimum):
        return None
    allowed = [hour for hour in HOURS if hour not in excluded and counts.get(hour, 0) > 0]
    candidates = allowed or list(HOURS)
    top = max(counts.get(hour, 0) for hour in candidates)
    # Hours in the order they come from now: this hour first, then the next, around the clock
    upcoming = [(local_now.hour + step) % 24 for step in HOURS]
    return next(h for h in upcoming if h in candidates and counts.get(h, 0) == top)


def best_time(
    counts: Mapping[int, int],
    *,
    now: dt.datetime,
    timezone: str,
    minimum: int,
    excluded: AbstractSet[int] = frozenset(),
) -> dt.datetime | None:
    """When to send (aware, UTC), at most 24 hours from `now` (aware); None: send now, the
    history is too thin to choose. `excluded`: local hours not to choose while an engaged hour
    outside them is left."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    hour = best_hour(counts, minimum=minimum, local_now=local_now, excluded=excluded)
    if hour is None:
        return None
    if hour == local_now.hour:
        return now.astimezone(dt.UTC)
    day = local_now.date() + dt.timedelta(days=0 if hour > local_now.hour else 1)
    # A wall-clock hour a DST change skips lands an hour later (zoneinfo's reading of fold=0).
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=zone)
    return local.astimezone(dt.UTC)
