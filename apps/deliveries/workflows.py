"""Throttles and escalation at creation: which throttle applies, whether the escalation fits the
template and the request, and the escalation steps' deliveries (`scheduled` from the start).

Called by services.notification_create inside its transaction; the counting is throttles.py,
the release and the stand-down of steps live in the lifecycle (lifecycle/escalation.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Literal

from apps.core import metrics
from apps.core.errors import InvalidInput
from apps.deliveries.lifecycle import delivery_new
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.recipients.models import Recipient
from apps.templates.models import Template
from notifier.routing import Reason
from notifier.types import Priority
from notifier.workflows import EscalationStep, SpecError, Throttle, throttle_parse

# The request's `throttle`: None (the template's), False (none), or its own.
RequestThrottle = Throttle | Literal[False] | None


def throttle_for(
    *, template: Template, requested: RequestThrottle, priority: str
) -> Throttle | None:
    """The throttle this notification counts against, None if none (`critical` never is)."""
    if priority == Priority.CRITICAL or requested is False:
        return None
    if requested is not None:
        return requested
    if not template.throttle:
        return None
    try:
        return throttle_parse(template.throttle)
    except SpecError as exc:  # saved before a rule tightened: the caller's template to fix
        raise InvalidInput(
            f"Template {template.key!r} has an invalid throttle: {exc}.",
            fields={"template": [f"invalid throttle: {exc}"]},
        ) from exc


def escalation_check(
    *,
    steps: Sequence[EscalationStep],
    template: Template,
    available: Collection[str],
    channels: Collection[str],
    fallback: Collection[str],
    send_at: dt.datetime | None,
) -> None:
    """Each step's channels: variants of the template, not already sent now or as fallback;
    each step's `after` later than the one before; and each step's time a date (a `send_at`
    near the end of the calendar has none after it)."""
    errors: dict[str, list[str]] = {}
    if steps and send_at is not None:
        try:
            send_at + max(step.after for step in steps)
        except OverflowError:
            errors["send_at"] = ["too late for the escalation's delays to follow it"]
    for i, step in enumerate(steps):
        problems = [
            f"no {c} variant in template {template.key!r}"
            for c in step.channels
            if c not in available
        ]
        problems += [f"{c} is already in channels" for c in step.channels if c in channels]
        problems += [f"{c} is already in fallback" for c in step.channels if c in fallback]
        if problems:
            errors[f"escalation[{i}].channels"] = problems
        # Steps escalate: a step due with or before the one before it would go out of order.
        if i and step.after <= steps[i - 1].after:
            errors[f"escalation[{i}].after"] = ["later than the step before it"]
    if errors:
        raise InvalidInput(
            "Escalation steps must use other channels of the template, each later than the one "
            "before, at a time that exists.",
            fields=errors,
        )


def escalation_deliveries(
    *,
    notification: Notification,
    steps: Sequence[EscalationStep],
    recipients: Sequence[Recipient],
    suppressed: Callable[[Recipient, str], bool],
    throttled: Collection[int],
    now: dt.datetime,
) -> list[Delivery]:
    """Every step's deliveries, unsaved (`notification_insert` writes them with the others),
    `scheduled` for the step's time (unless the routing rules skip them now: no address, opted
    out, suppressed, throttled). `suppressed(recipient, channel)` answers from what the caller
    already read."""
    start = notification.send_at if notification.send_at and notification.send_at > now else now
    return [
        delivery_new(
            notification,
            recipient,
            channel,
            send_at=start + step.after,
            now=now,
            suppressed=suppressed(recipient, channel),
            throttled=recipient.pk in throttled,
            escalation_step=number,
        )
        for number, step in enumerate(steps, start=1)
        for recipient in recipients
        for channel in step.channels
    ]


def workflows_counted(deliveries: Sequence[Delivery]) -> None:
    """Metrics of a new notification's throttled deliveries and scheduled escalation steps."""
    throttled = Reason.THROTTLED.message()
    metrics.deliveries_throttled(deliveries=[d for d in deliveries if d.reason == throttled])
    metrics.escalation_steps(
        deliveries=[
            d for d in deliveries if d.escalation_step and d.status == DeliveryStatus.SCHEDULED
        ],
        outcome="scheduled",
    )
