"""Routing rules decided before a send: opt-outs, contact data, quiet hours, daily caps.

Pure functions over plain values; the apps gather the facts and apply the decision.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
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


class Reason(StrEnum):
    """Why a delivery is skipped or deferred. The code decides (fallback, metrics); the message
    (`Reason.message`) is what the delivery row and the API show."""

    NO_ADDRESS = "no_address"
    OPTED_OUT = "opted_out"
    OPTED_OUT_CATEGORY = "opted_out_category"
    SUPPRESSED = "suppressed"
    QUIET_HOURS = "quiet_hours"
    DAILY_LIMIT = "daily_limit"
    THROTTLED = "throttled"  # the template's or request's throttle (workflows)
    ENGAGED = "engaged"  # an escalation step the recipient made needless (workflows)

    def message(self, *, channel: str = "", category: str = "") -> str:
        return MESSAGES[self].format(channel=channel, category=category)

    @property
    def unreachable(self) -> bool:
        """The recipient cannot be reached on that channel (no contact data, or a suppressed
        address), as opposed to having chosen not to hear there or having to wait."""
        return self in (Reason.NO_ADDRESS, Reason.SUPPRESSED)

    @classmethod
    def of(cls, message: str) -> Reason | None:
        """The code of a message `message()` wrote (rows store the message), None for any other
        text (a provider's failure reason, a cancel)."""
        return next((code for code, shape in _SHAPES.items() if shape.fullmatch(message)), None)


# Stored on delivery rows and shown by the API: changing one changes the public contract.
MESSAGES: dict[Reason, str] = {
    Reason.NO_ADDRESS: "no {channel} contact data",
    Reason.OPTED_OUT: "opted out of {channel}",
    Reason.OPTED_OUT_CATEGORY: "opted out of {category} on {channel}",
    Reason.SUPPRESSED: "address suppressed",
    Reason.QUIET_HOURS: "quiet hours",
    Reason.DAILY_LIMIT: "daily limit reached",
    Reason.THROTTLED: "throttled",
    Reason.ENGAGED: "engaged",
}
# A channel is one word; a category is any text.
_SHAPES = {
    code: re.compile(
        re.escape(text).replace(r"\{channel\}", "[a-z]+").replace(r"\{category\}", ".+")
    )
    for code, text in MESSAGES.items()
}


class Action(StrEnum):
    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True)
class Decision:
    """`send` now, `skip` with a reason, or `defer` until `not_before`."""

    action: Action
    code: Reason | None = None
    reason: str = ""  # the code's message
    not_before: dt.datetime | None = None


SEND = Decision(Action.SEND)


def _skip(code: Reason, *, channel: str, category: str = "") -> Decision:
    return Decision(Action.SKIP, code, code.message(channel=channel, category=category))


def _defer(code: Reason, not_before: dt.datetime) -> Decision:
    return Decision(Action.DEFER, code, code.message(), not_before)


def quiet_hours_end(rules: RecipientRules, now: dt.datetime) -> dt.datetime | None:
    """When `now` falls in the recipient's quiet window, the window's end (aware, UTC)."""
    start, end = rules.quiet_start, rules.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(rules.timezone))
    t = local.time().replace(tzinfo=None)
    if not _quiet_at(t, start, end):
        return None
    # A window spanning midnight (22:00-07:00) entered before midnight ends the next day
    end_date = local.date() + dt.timedelta(days=1) if start > end and t >= start else local.date()
    local_end = dt.datetime.combine(end_date, end, tzinfo=ZoneInfo(rules.timezone))
    return local_end.astimezone(dt.UTC)


def _quiet_at(t: dt.time, start: dt.time, end: dt.time) -> bool:
    if start < end:
        return start <= t < end
    return t >= start or t < end  # the window spans midnight, e.g. 22:00-07:00


def quiet_hours(start: dt.time | None, end: dt.time | None) -> frozenset[int]:
    """The hours (0-23) of the local day whose start falls in the quiet window `start`-`end`
    (a send planned then would be deferred); none without a window."""
    if start is None or end is None or start == end:
        return frozenset()
    return frozenset(hour for hour in range(24) if _quiet_at(dt.time(hour), start, end))


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
    throttled: bool = False,
    sent_today: int = 0,
    now: dt.datetime,
) -> Decision:
    """What to do with one delivery now. `critical` bypasses quiet hours and caps, not opt-outs.
    `throttled`: over its throttle's limit (the caller never throttles `critical`)."""
    if not has_address:
        return _skip(Reason.NO_ADDRESS, channel=channel)
    if rules.channels.get(channel) is False:
        return _skip(Reason.OPTED_OUT, channel=channel)
    if rules.categories.get(category, {}).get(channel) is False:
        return _skip(Reason.OPTED_OUT_CATEGORY, channel=channel, category=category)
    if suppressed:
        return _skip(Reason.SUPPRESSED, channel=channel)
    if throttled:
        return _skip(Reason.THROTTLED, channel=channel)
    if priority == Priority.CRITICAL:
        return SEND
    quiet_end = quiet_hours_end(rules, now)
    if quiet_end is not None:
        return _defer(Reason.QUIET_HOURS, quiet_end)
    if rules.daily_limit is not None and sent_today >= rules.daily_limit:
        return _defer(Reason.DAILY_LIMIT, next_local_midnight(rules.timezone, now))
    return SEND
