"""Writes driven by providers' status reports (webhooks): delivered / opened / clicked / failed.

A status only moves forward: sending < sent < delivered < opened < clicked. `failed` (a bounce,
a drop, an undelivered SMS) applies to a delivery that is `sending`, `sent` or `delivered`
(asynchronous bounces follow a `delivered`), never to one the recipient opened or clicked.
A report can overtake our own bookkeeping: the provider accepted the message and called back
before the worker committed `sent`; it applies, and the worker then keeps it (sending.py).
Reports about a delivery in any other state (queued, dead, cancelled, already failed) change
nothing. The rule is the lifecycle's (apps/deliveries/lifecycle/table.py, REPORTS).
"""

from __future__ import annotations

import uuid

from apps.deliveries.lifecycle import delivery_report
from apps.deliveries.models import Delivery
from notifier.types import Channel


def delivery_find(*, delivery_id: str = "", provider_message_id: str = "") -> Delivery | None:
    """The delivery a provider report is about: by our id when echoed back, else the provider's."""
    if delivery_id:
        try:
            parsed = uuid.UUID(str(delivery_id))
        except ValueError:
            parsed = None
        if parsed is not None:
            found = Delivery.objects.filter(id=parsed).first()
            if found is not None:
                return found
    if provider_message_id:
        return Delivery.objects.filter(provider_message_id=provider_message_id).first()
    return None


def sms_delivery_find(*, message_sid: str, delivery_id: str = "") -> Delivery | None:
    """The SMS delivery Twilio reports on: the one whose provider message id is `message_sid`
    (what Twilio answered when it took the message). A `delivery_id` from the callback URL must
    name that same delivery; it never selects one by itself."""
    if not message_sid:
        return None
    found = Delivery.objects.filter(channel=Channel.SMS, provider_message_id=message_sid).first()
    if found is None or (delivery_id and str(found.id) != str(delivery_id)):
        return None
    return found


def delivery_provider_status(*, delivery: Delivery, status: str, detail: str) -> bool:
    """Apply a provider-reported status if it moves the delivery forward (the lifecycle's
    REPORTS table). True if it changed."""
    return delivery_report(delivery=delivery, status=status, detail=detail)
