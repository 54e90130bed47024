"""What the delivery lifecycle tells the apps above it (they listen; it imports none of them).

Both signals are sent synchronously INSIDE the transaction that writes the change, so that a
receiver's own rows (the outbound webhooks' outbox) commit or roll back with it: nothing is
announced that did not happen, and nothing that happened goes unannounced. They are
GuardedSignals (apps.core.signals): each receiver runs in its own savepoint, and one that fails
(an exception, a statement timeout) is logged and counted, never undoing the change (a send the
provider accepted stays `sent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.core.signals import GuardedSignal
from apps.deliveries.models import Delivery, DeliveryStatus

S = DeliveryStatus
# The statuses announced (`delivery.<status>` webhooks); the others are bookkeeping.
ANNOUNCED = frozenset(
    {S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.READ, S.FAILED, S.DEAD, S.SKIPPED}
)

# `changes`: a list of DeliveryChange, one per delivery of a batch (one send per batch).
deliveries_changed = GuardedSignal()
# `notification` and `cancelled` (the deliveries its cancel moved), from notification_cancel.
notification_cancelled = GuardedSignal()


@dataclass(frozen=True)
class DeliveryChange:
    """A delivery that reached an announced status, with what a receiver needs to say so
    without reading the row again."""

    delivery_id: Any
    notification_id: Any
    recipient_id: int
    channel: str
    status: str
    reason: str
    provider: str
    attempts: int
    at: dt.datetime


def changes_announced(deliveries: Iterable[Delivery], status: str | None = None) -> bool:
    """Whether `changes_announce` would send anything for these."""
    return any((status or d.status) in ANNOUNCED for d in deliveries)


def changes_announce(deliveries: Iterable[Delivery], status: str | None = None) -> None:
    """Send `deliveries_changed` for those of these (in-memory, just moved) deliveries whose
    new status (`status`, else their own) is announced. Nothing when none is."""
    now = timezone.now()
    changes = [
        DeliveryChange(
            delivery_id=d.pk,
            notification_id=d.notification_id,
            recipient_id=d.recipient_id,
            channel=d.channel,
            status=str(status or d.status),
            reason=d.reason,
            provider=d.provider,
            attempts=d.attempts,
            at=now,
        )
        for d in deliveries
        if (status or d.status) in ANNOUNCED
    ]
    if changes:
        deliveries_changed.send(sender=Delivery, changes=changes)
