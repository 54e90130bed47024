"""Routing rules decided before a send: opt-outs, contact data, quiet hours, daily caps.

Pure functions over plain values; the apps gather the facts and apply the decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from notifier.types import Priority


@dataclass(frozen=True)
class RecipientRules:
    timezone: str = "UTC"
    channels: dict[str, bool] = field(default_factory=dict)
    categories: dict[str, dict[str, bool]] = field(default_factory=dict)
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    daily_limit: int | None = None


@dataclass(frozen=True)
class Decision:
    """`send` now, `skip` with a reason, or `defer` until `not_before`."""

    action: str
    reason: str = ""
    not_before: dt.datetime | None = None


SEND = Decision("send")


def quiet_hours_end(rules: RecipientRules, now: dt.datetime) -> dt.datetime | None:
    """When `now` falls in the recipient's quiet window, the window's end (aware, UTC)."""
    start, end = rules.quiet_start, rules.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(rules.timezone))
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_date = local.date()
    else:  # the window spans midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
        end_date = local.date() + dt.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    local_end = dt.datetime.combine(end_date, end, tzinfo=ZoneInfo(rules.timezone))
    return local_end.astimezone(dt.UTC)


def next_local_midnight(timezone: str, now: dt.datetime) -> dt.datetime:
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return midnight.astimezone(dt.UTC)


def decide(
    *,
    rules: RecipientRules,
    channel: str,
    category: str,
    priority: str,
    has_address: bool,
    suppressed: bool = False,
    sent_today: int = 0,
    now: dt.datetime,
) -> Decision:
    """What to do with one delivery now. `critical` bypasses quiet hours and caps, not opt-outs."""
    if not has_address:
        return Decision("skip", f"no {channel} contact data")
    if rules.channels.get(channel) is False:
        return Decision("skip", f"opted out of {channel}")
    if rules.categories.get(category, {}).get(channel) is False:
        return Decision("skip", f"opted out of {category} on {channel}")
    if suppressed:
        return Decision("skip", "address suppressed")
    if priority == Priority.CRITICAL:
        return SEND
    quiet_end = quiet_hours_end(rules, now)
    if quiet_end is not None:
        return Decision("defer", "quiet hours", quiet_end)
    if rules.daily_limit is not None and sent_today >= rules.daily_limit:
        return Decision("defer", "daily limit reached", next_local_midnight(rules.timezone, now))
    return SEND
