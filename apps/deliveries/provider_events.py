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
from apps.deliveries.models import Delivery, DeliveryStatus
from notifier.types import Channel


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def delivery_find(*, delivery_id: str = "", provider_message_id: str = "") -> Delivery | None:
    """The delivery a provider report is about: by our id when echoed back, else the provider's."""
    if delivery_id:
        parsed = _uuid_or_none(delivery_id)
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
    name that same delivery; by itself it selects only a send still in flight without a sid."""
    if not message_sid:
        return None
    found = Delivery.objects.filter(channel=Channel.SMS, provider_message_id=message_sid).first()
    overtaken_id = _uuid_or_none(delivery_id) if found is None and delivery_id else None
    if overtaken_id is not None:
        # The report overtook the worker's write of the MessageSid (it records its batch every
        # SEND_BATCH_RECORD_SECONDS): the signed callback URL names the delivery it was issued
        # for, and one still `sending` with no message id yet can only be that send. Twilio does
        # not retry status callbacks, so dropping it would lose a bounce.
        return Delivery.objects.filter(
            id=overtaken_id,
            channel=Channel.SMS,
            status=DeliveryStatus.SENDING,
            provider_message_id="",
        ).first()
    if found is None or (delivery_id and str(found.id) != str(delivery_id)):
        return None
    return found


def delivery_provider_status(*, delivery: Delivery, status: str, detail: str) -> bool:
    """Apply a provider-reported status if it moves the delivery forward (the lifecycle's
    REPORTS table). True if it changed."""
    return delivery_report(delivery=delivery, status=status, detail=detail)
