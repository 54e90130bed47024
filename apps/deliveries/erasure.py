"""GDPR erasure of a recipient's delivery history (called by the recipients app).

History stays countable (statuses, timings, attempts) but no longer says who it was for or
what it said: pending deliveries are cancelled, provider error texts (which can echo an
address) are blanked, and single-recipient notifications lose their variables.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.deliveries.models import (
    CANCELLABLE,
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Notification,
)
from apps.recipients.models import Recipient

ERASED_REASON = "recipient erased"


def _anonymised_response(response: Any, external_id: str, alias: str) -> Any:
    if not isinstance(response, dict):
        return {}
    deliveries = [
        {**d, "recipient": alias} if d.get("recipient") == external_id else d
        for d in response.get("deliveries", [])
        if isinstance(d, dict)
    ]
    return {**response, "deliveries": deliveries} if "deliveries" in response else response


@transaction.atomic
def deliveries_anonymise(*, recipient: Recipient, alias: str) -> int:
    """Cancel the recipient's unsent deliveries and strip personal data from their history.
    Returns how many deliveries were cancelled."""
    now = timezone.now()
    pending = list(
        Delivery.objects.select_for_update().filter(recipient=recipient, status__in=CANCELLABLE)
    )
    for delivery in pending:
        delivery.status = DeliveryStatus.CANCELLED
        delivery.reason = ERASED_REASON
        delivery.updated_at = now
    Delivery.objects.bulk_update(pending, ["status", "reason", "updated_at"])
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(delivery=d, status=DeliveryStatus.CANCELLED, detail=ERASED_REASON)
        for d in pending
    )
    Attempt.objects.filter(delivery__recipient=recipient).exclude(error="").update(error="")
    # Device tokens are personal data too.
    Delivery.objects.filter(recipient=recipient).exclude(push_accepted={}).update(push_accepted={})
    DeadLetter.objects.filter(delivery__recipient=recipient).exclude(last_error="").update(
        last_error=""
    )
    single_ids = set(
        Notification.objects.filter(deliveries__recipient=recipient, recipient_count=1).values_list(
            "id", flat=True
        )
    )
    for notification in Notification.objects.select_for_update().filter(id__in=single_ids):
        notification.variables = {}
        notification.response = _anonymised_response(
            notification.response, recipient.external_id, alias
        )
        notification.save(update_fields=["variables", "response"])
    return len(pending)
