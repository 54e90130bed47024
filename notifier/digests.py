"""Digest rules without the ORM: the declaration a template or request makes (its window a
duration as notifier/durations.py reads it), the cadence a recipient picks per category, and
when a window closes.

Precedence (`digest_plan`): only a notification whose template or request declares a digest is
digested (a template without one renders its own variables, say an order's `items`, and must
never be batched); `critical` is never digested; a request's `"digest": false` sends each one;
else the recipient's cadence for the category (`off` sends each one; `hourly` closes at the next
full hour, `daily@HH:MM` at the next HH:MM, both in the recipient's timezone); else the
declaration's window (it runs from the first notification).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from notifier.durations import parse_duration, stored_duration
from notifier.rendering import TemplateError, key_expression_check
from notifier.types import Priority

# A window: at least a second (tests use "2s"), at most a week (a digest is a summary, not an
# archive: the rows it holds stay undelivered that long).
MIN_WINDOW = dt.timedelta(seconds=1)
MAX_WINDOW = dt.timedelta(days=7)
DEFAULT_MAX_ITEMS = 50
MAX_ITEMS_LIMIT = 500
KEY_SOURCE_MAX = 200
DIGEST_FIELDS = frozenset({"window", "key", "max_items"})
CADENCE_RE = re.compile(r"^(hourly|off|daily@([01][0-9]|2[0-3]):([0-5][0-9]))$")


class DigestError(ValueError):
    """An invalid declaration or cadence: `fields` names what is wrong, per field."""

    def __init__(self, message: str, fields: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True)
class DigestSpec:
    """A declaration: the window's length, the key template that splits digests (`""`: one
    digest per recipient, template and channel), and the most items rendered."""

    window: dt.timedelta
    key: str = ""
    max_items: int = DEFAULT_MAX_ITEMS

    def as_json(self) -> dict[str, Any]:
        return {
            "window": f"{int(self.window.total_seconds())}s",
            "key": self.key,
            "max_items": self.max_items,
        }


def parse_digest(value: object, *, field: str = "digest") -> DigestSpec | None:
    """A declaration as given (an object, or `false`/`null` for none), checked. DigestError
    names each bad part as `<field>.<part>`."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise DigestError(
            "Invalid digest.", {field: ["an object {window, key, max_items}, or false"]}
        )
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(value) - DIGEST_FIELDS)
    if unknown:
        errors[field] = [f"unknown field(s): {', '.join(map(str, unknown))}"]
    window = dt.timedelta()
    try:
        window = parse_duration(value.get("window"), minimum=MIN_WINDOW, maximum=MAX_WINDOW)
    except ValueError as exc:
        errors[f"{field}.window"] = [str(exc)]
    key = value.get("key", "")
    if not isinstance(key, str) or len(key) > KEY_SOURCE_MAX:
        errors[f"{field}.key"] = [f"a template expression of at most {KEY_SOURCE_MAX} characters"]
    elif key:
        try:
            key_expression_check(key)
        except TemplateError as exc:
            errors[f"{field}.key"] = [f"not a valid template expression: {exc}"]
    max_items = value.get("max_items", DEFAULT_MAX_ITEMS)
    if (
        isinstance(max_items, bool)
        or not isinstance(max_items, int)
        or not 1 <= max_items <= MAX_ITEMS_LIMIT
    ):
        errors[f"{field}.max_items"] = [f"an integer from 1 to {MAX_ITEMS_LIMIT}"]
    if errors:
        raise DigestError("Invalid digest: " + "; ".join(sorted(errors)) + ".", errors)
    return DigestSpec(window=window, key=str(key), max_items=int(max_items))


def digest_stored(value: Mapping[str, Any] | None) -> DigestSpec | None:
    """A declaration as an accepted notification stored it (`as_json`, checked then), not
    checked again against today's limits."""
    if not value:
        return None
    return DigestSpec(
        window=stored_duration(str(value["window"])),
        key=str(value.get("key", "")),
        max_items=int(value.get("max_items", DEFAULT_MAX_ITEMS)),
    )


def parse_cadence(value: object) -> str:
    """A recipient's cadence for a category: `hourly`, `daily@HH:MM` or `off`."""
    if not isinstance(value, str) or not CADENCE_RE.fullmatch(value):
        raise ValueError("'hourly', 'daily@HH:MM' (24-hour, the recipient's time) or 'off'")
    return value


def cadence_close(cadence: str, *, timezone: str, now: dt.datetime) -> dt.datetime:
    """When a window opened at `now` under `cadence` closes: the next full hour, or the next
    HH:MM, on the recipient's wall clock (aware, UTC). A wall-clock time a DST change skips
    closes at the same instant an hour later; a repeated one at its first occurrence."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    if cadence == "hourly":
        # The local hour's start as a real instant, plus 3600 s (a half-hour zone's hours start
        # at :30 UTC). Aware arithmetic on the wall clock would be wrong across a fall-back: in
        # the repeated hour, 01:00 + 1 h is 02:00 on the clock, two real hours later.
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        return start + dt.timedelta(seconds=3600)
    match = CADENCE_RE.match(cadence)
    if match is None or match[2] is None:
        raise ValueError(f"not a closing cadence: {cadence!r}")
    at = dt.time(int(match[2]), int(match[3]))
    day = local.date()
    while True:
        candidate = dt.datetime.combine(day, at, tzinfo=tz)
        # Normalise through UTC: a skipped wall time (spring forward) becomes a real instant.
        instant = candidate.astimezone(dt.UTC)
        if instant > now:
            return instant
        day += dt.timedelta(days=1)


@dataclass(frozen=True)
class DigestPlan:
    """One delivery's digest: its key template, its item cap, and when its window would close
    if this delivery opened it."""

    key: str
    max_items: int
    closes_at: dt.datetime
    cadence: str = ""  # the recipient's, when it decided


def digest_plan(
    *,
    declared: DigestSpec | None,
    request_off: bool,
    cadences: Mapping[str, str],
    category: str,
    priority: str,
    timezone: str,
    now: dt.datetime,
) -> DigestPlan | None:
    """Whether a delivery is digested, and how (precedence in the module docstring)."""
    if declared is None or priority == Priority.CRITICAL or request_off:
        return None
    cadence = cadences.get(category, "")
    key, max_items = declared.key, declared.max_items
    if cadence == "off":
        return None
    if cadence:
        closes = cadence_close(cadence, timezone=timezone, now=now)
        return DigestPlan(key=key, max_items=max_items, closes_at=closes, cadence=cadence)
    return DigestPlan(key=key, max_items=max_items, closes_at=now + declared.window)
