"""Periodic repair and release of deliveries (run by beat)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.deliveries.models import Delivery, DeliveryStatus
from apps.deliveries.services import deliveries_requeue

BATCH = 1000


@transaction.atomic
def deliveries_release_due(*, now: dt.datetime | None = None) -> int:
    """Queue scheduled and deferred deliveries whose time has come. Returns how many."""
    now = now or timezone.now()
    due = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(status__in=[DeliveryStatus.SCHEDULED, DeliveryStatus.DEFERRED], not_before__lte=now)
        .order_by("not_before")[:BATCH]
    )
    deliveries_requeue(due, detail="released: due")
    return len(due)


@transaction.atomic
def deliveries_reconcile(*, now: dt.datetime | None = None) -> int:
    """Re-queue deliveries stuck in queued, retrying or sending past their deadline.

    Redis may have lost the message, or the worker died mid-send: the row is the truth.
    A duplicate message is harmless, the claim lets only one through.
    """
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.RECONCILE_AFTER_SECONDS)
    # Past this, nobody is sending it any more: the worker died (see SEND_STUCK_AFTER_SECONDS).
    sending_deadline = dt.timedelta(seconds=settings.SEND_STUCK_AFTER_SECONDS)
    stuck = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(
            # A queued delivery told to wait for a rate limit or breaker has next_attempt_at.
            Q(status=DeliveryStatus.QUEUED, updated_at__lt=now - grace)
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now - grace))
            | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lt=now - grace)
            | Q(status=DeliveryStatus.SENDING, updated_at__lt=now - sending_deadline)
        )
        .order_by("updated_at")[:BATCH]
    )
    deliveries_requeue(stuck, detail="re-queued by the reconciler")
    return len(stuck)
