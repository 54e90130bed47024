"""A delivery's first status: what the routing rules say at creation, written with its event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import transaction

from apps.deliveries.lifecycle.table import events_add
from apps.deliveries.models import Delivery, DeliveryStatus, Notification, default_max_attempts
from apps.deliveries.queueing import publish_sends_after_commit
from apps.deliveries.rules import delivery_decide
from apps.recipients.models import Recipient
from notifier.routing import Action


def enqueue_on_commit(deliveries: Iterable[Delivery]) -> None:
    """Publish send tasks for these (already `queued`) deliveries once the transaction commits."""
    items = [(str(d.id), d.channel, d.priority) for d in deliveries]
    if items:
        transaction.on_commit(lambda: publish_sends_after_commit(items))


def delivery_new(
    notification: Notification,
    recipient: Recipient,
    channel: str,
    *,
    send_at: dt.datetime | None,
    now: dt.datetime,
    suppressed: bool,
    is_fallback: bool = False,
) -> Delivery:
    """An unsaved delivery in the status the routing rules give it: `skipped` (with the reason),
    `scheduled` until `send_at`, `deferred` (quiet hours, the daily cap), or `queued`."""
    decision = delivery_decide(
        recipient=recipient,
        channel=channel,
        category=notification.category,
        priority=notification.priority,
        now=send_at if send_at and send_at > now else now,
        suppressed=suppressed,
    )
    status, reason, not_before = DeliveryStatus.QUEUED, "", None
    if decision.action is Action.SKIP:
        status, reason = DeliveryStatus.SKIPPED, decision.reason
    elif send_at and send_at > now:
        status, not_before = DeliveryStatus.SCHEDULED, send_at
    elif decision.action is Action.DEFER:
        status, reason, not_before = DeliveryStatus.DEFERRED, decision.reason, decision.not_before
    return Delivery(
        notification=notification,
        recipient=recipient,
        channel=channel,
        priority=notification.priority,
        status=status,
        reason=reason,
        not_before=not_before,
        is_fallback=is_fallback,
        max_attempts=default_max_attempts(channel),
    )


def deliveries_create(deliveries: Sequence[Delivery], *, detail_prefix: str = "") -> None:
    """Insert new deliveries (from `delivery_new`) with their first event, in two statements,
    and publish the queued ones after commit."""
    Delivery.objects.bulk_create(deliveries)
    events_add(deliveries, None, lambda d: f"{detail_prefix}{d.reason or 'accepted'}")
    enqueue_on_commit(d for d in deliveries if d.status == DeliveryStatus.QUEUED)
