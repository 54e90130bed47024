"""Throttles and escalation steps as plain values: parsing and checking what a template or a
request declares, and which delivery statuses satisfy an escalation step's `unless`.

Pure functions; the apps store the specs, count throttles in Redis and schedule the steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notifier.durations import format_duration, parse_duration, stored_duration
from notifier.rendering import RenderError, key_expression_check, render
from notifier.types import Channel

THROTTLE_MAX_LIMIT = 10_000
THROTTLE_KEY_MAX = 200  # characters of the key expression
ESCALATION_MAX_STEPS = 5

# What an escalation step's `unless` may name: a state some earlier delivery reached (`seen`:
# its in-app message was in the bell when the recipient opened it; not a delivery status).
UNLESS_STATES = ("delivered", "opened", "clicked", "read", "seen")
# An open, a click or a read is engagement: the recipient has seen the notification, so any
# `unless` is met (an in-app read is also "seen"; an opened email is also "read" for the
# purpose of not nagging). `delivered` is met by a delivery report, or by any engagement;
# `seen` meets only `seen` (and `delivered`: a seen message was delivered).
ENGAGED = ("opened", "clicked", "read")
REACHED: dict[str, tuple[str, ...]] = {
    "delivered": ("delivered", "seen", *ENGAGED),
    "opened": ENGAGED,
    "clicked": ENGAGED,
    "read": ENGAGED,
    "seen": ("seen", *ENGAGED),
}


class SpecError(ValueError):
    """A throttle or escalation that cannot be used; `fields` names the parts at fault."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Throttle:
    """At most `limit` notifications per recipient (and per rendered `key`) in `window`."""

    limit: int
    window: dt.timedelta
    key: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "window": format_duration(self.window), "key": self.key}

    def key_for(self, variables: Mapping[str, Any]) -> str:
        """The rendered key expression (empty without one)."""
        if not self.key:
            return ""
        return render(body=self.key, variables=variables, recipient={}).body.strip()


def throttle_parse(value: object) -> Throttle:
    """A throttle from its JSON form; SpecError naming each bad part."""
    if not isinstance(value, Mapping):
        raise SpecError({"throttle": ['an object {"limit", "window", "key"}']})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(value) - {"limit", "window", "key"})
    if unknown:
        errors["throttle"] = [f"unknown field {name!r}" for name in unknown]
    limit = value.get("limit")
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= THROTTLE_MAX_LIMIT
    ):
        errors["limit"] = [f"an integer from 1 to {THROTTLE_MAX_LIMIT}"]
    window = dt.timedelta()
    try:
        window = parse_duration(value.get("window"))
    except ValueError as exc:
        errors["window"] = [str(exc)]
    key = value.get("key", "")
    if not isinstance(key, str) or len(key) > THROTTLE_KEY_MAX:
        errors["key"] = [f"a template expression of at most {THROTTLE_KEY_MAX} characters"]
    elif key:
        try:
            key_expression_check(key)
            render(body=key, variables={}, recipient={})
        except RenderError as exc:
            errors["key"] = [f"not a valid template expression: {exc}"]
    if errors:
        raise SpecError(errors)
    assert isinstance(limit, int)  # noqa: S101 - checked above
    return Throttle(limit=limit, window=window, key=str(key))


def throttle_stored(value: Mapping[str, Any]) -> Throttle:
    """A throttle as an accepted notification stored it (`as_json`, checked then), not checked
    again against today's limits: a limit lowered since must not fail its fan-out for ever."""
    return Throttle(
        limit=int(value["limit"]),
        window=stored_duration(str(value["window"])),
        key=str(value.get("key", "")),
    )


@dataclass(frozen=True)
class EscalationStep:
    """Send on `channels` `after` the notification, unless an earlier delivery reached
    `unless`."""

    after: dt.timedelta
    channels: tuple[str, ...]
    unless: str = "read"

    def as_json(self) -> dict[str, Any]:
        return {
            "after": format_duration(self.after),
            "channels": list(self.channels),
            "unless": self.unless,
        }


def escalation_parse(value: object) -> list[EscalationStep]:
    """Escalation steps from their JSON form; SpecError naming each bad part by index."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise SpecError({"escalation": ["a list of steps"]})
    if len(value) > ESCALATION_MAX_STEPS:
        raise SpecError({"escalation": [f"at most {ESCALATION_MAX_STEPS} steps"]})
    errors: dict[str, list[str]] = {}
    steps: list[EscalationStep] = []
    seen: set[str] = set()
    for i, raw in enumerate(value):
        where = f"escalation[{i}]"
        if not isinstance(raw, Mapping):
            errors[where] = ['an object {"after", "channels", "unless"}']
            continue
        unknown = sorted(set(raw) - {"after", "channels", "unless"})
        if unknown:
            errors[where] = [f"unknown field {name!r}" for name in unknown]
        after = dt.timedelta()
        try:
            after = parse_duration(raw.get("after"))
        except ValueError as exc:
            errors[f"{where}.after"] = [str(exc)]
        channels = raw.get("channels")
        valid = [c.value for c in Channel]
        if (
            not isinstance(channels, list)
            or not channels
            or not all(isinstance(c, str) and c in valid for c in channels)
        ):
            errors[f"{where}.channels"] = [f"a non-empty list of: {', '.join(valid)}"]
            channels = []
        repeated = sorted({c for c in channels if c in seen} | _twice(channels))
        if repeated:
            errors[f"{where}.channels"] = [f"{c} is already in an earlier step" for c in repeated]
        seen.update(channels)
        unless = raw.get("unless", "read")
        if unless not in UNLESS_STATES:
            errors[f"{where}.unless"] = [f"one of: {', '.join(UNLESS_STATES)}"]
        steps.append(EscalationStep(after=after, channels=tuple(channels), unless=str(unless)))
    if errors:
        raise SpecError(errors)
    return steps


def escalation_stored(value: Sequence[Mapping[str, Any]]) -> list[EscalationStep]:
    """Escalation steps as an accepted notification stored them (`as_json`, checked then), not
    checked again against today's limits."""
    return [
        EscalationStep(
            after=stored_duration(str(step["after"])),
            channels=tuple(str(c) for c in step["channels"]),
            unless=str(step.get("unless", "read")),
        )
        for step in value
    ]


def escalation_channels(steps: Sequence[EscalationStep]) -> list[str]:
    """Every channel the steps send on, in step order."""
    return [c for step in steps for c in step.channels]


def _twice(channels: Sequence[str]) -> set[str]:
    return {c for c in channels if channels.count(c) > 1}


def unless_met(unless: str, statuses: Sequence[str]) -> bool:
    """Whether any of these (earlier deliveries') statuses satisfies the step's `unless`."""
    reached = REACHED.get(unless, ENGAGED)
    return any(status in reached for status in statuses)
