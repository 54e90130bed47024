"""Confirmations that arrive after a delivery was sent (for now: an in-app message was read)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus

# A message can be read once it was handed over; `read` is final for an in-app delivery.
READABLE = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
)


def deliveries_mark_read(*, delivery_ids: Sequence[UUID | str]) -> int:
    """Move these deliveries to `read`, with an event in each timeline; the number moved."""
    if not delivery_ids:
        return 0
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update()
            .filter(id__in=delivery_ids, status__in=READABLE)
            .values_list("id", flat=True)
        )
        if not ids:
            return 0
        Delivery.objects.filter(id__in=ids).update(
            status=DeliveryStatus.READ, updated_at=timezone.now()
        )
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery_id=i, status=DeliveryStatus.READ, detail="read by recipient")
            for i in ids
        )
    return len(ids)
