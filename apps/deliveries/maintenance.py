"""Periodic repair and release of deliveries (run by beat)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.deliveries.lifecycle import deliveries_release, deliveries_requeue
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.deliveries.queueing import held_since_before, ledger_forget_before, ledger_missing

BATCH = 1000
# Rows examined by one reconciler run at most (in BATCH-sized transactions).
RECONCILE_MAX_ROWS = 50_000


@transaction.atomic
def deliveries_release_due(*, now: dt.datetime | None = None) -> int:
    """Queue scheduled and deferred deliveries whose time has come. Returns how many."""
    now = now or timezone.now()
    due = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(status__in=[DeliveryStatus.SCHEDULED, DeliveryStatus.DEFERRED], not_before__lte=now)
        .order_by("not_before")[:BATCH]
    )
    deliveries_release(due, now=now)
    return len(due)


def deliveries_reconcile(
    *, now: dt.datetime | None = None, max_rows: int = RECONCILE_MAX_ROWS
) -> int:
    """Re-queue deliveries whose message is gone. Returns how many.

    Candidates are rows in queued or retrying past their due time by RECONCILE_AFTER_SECONDS;
    of those, only the ones whose message is gone are re-queued: the publish ledger does not
    hold it (Redis lost it, or its publish failed and only an earlier message's entry is left),
    a worker fetched it and died before claiming it, or it fell due
    more than RECONCILE_LOST_AFTER_SECONDS ago. A backlog that simply takes a while to drain
    is not multiplied. Rows in `sending` past SEND_STUCK_AFTER_SECONDS are re-queued always:
    their worker died mid-send. The row is the truth; a duplicate message is harmless, the
    claim lets only one through.
    """
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.RECONCILE_AFTER_SECONDS)
    sending_deadline = dt.timedelta(seconds=settings.SEND_STUCK_AFTER_SECONDS)
    stuck = (
        # A queued delivery told to wait for a rate limit or breaker has next_attempt_at.
        Q(status=DeliveryStatus.QUEUED, updated_at__lt=now - grace)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=now - grace))
        | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lt=now - grace)
        | Q(status=DeliveryStatus.SENDING, updated_at__lt=now - sending_deadline)
    )
    ledger_forget_before(now.timestamp() - settings.RECONCILE_LOST_AFTER_SECONDS)
    # Messages fetched by a worker that died before claiming them (its prefetch).
    held_by_the_dead = held_since_before((now - grace).timestamp())
    requeued = scanned = 0
    after: tuple[dt.datetime, object] | None = None
    while scanned < max_rows:
        with transaction.atomic():
            rows = Delivery.objects.select_for_update(skip_locked=True).filter(stuck)
            if after is not None:
                rows = rows.filter(
                    Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1])
                )
            batch = list(rows.order_by("updated_at", "id")[:BATCH])
            if not batch:
                break
            missing = ledger_missing(
                {
                    str(d.id): d.updated_at.timestamp()
                    for d in batch
                    if d.status != DeliveryStatus.SENDING
                }
            )
            lost = [
                d
                for d in batch
                if d.status == DeliveryStatus.SENDING
                or str(d.id) in missing
                or str(d.id) in held_by_the_dead
            ]
            after = (batch[-1].updated_at, batch[-1].id)
            deliveries_requeue(lost, detail="re-queued by the reconciler", now=now)
        requeued += len(lost)
        scanned += len(batch)
    return requeued
