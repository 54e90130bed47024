"""Retention: delivery history past its age is deleted, in small batches (beat and
`manage.py purge_history`)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.core import metrics
from apps.deliveries.models import (
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Digest,
    Notification,
)

logger = logging.getLogger(__name__)

# Small transactions: the delivery tables are the write hot spot, never lock them for long.
PURGE_BATCH = 500
# Only finished deliveries are purged; anything still in flight keeps its history.
FINISHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
    DeliveryStatus.DEAD,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.CANCELLED,
)
# A digest item is finished once its window has closed (sent in the digest's delivery).
FINISHED_ROWS = Q(status__in=FINISHED) | Q(
    status=DeliveryStatus.DIGESTED, digest__closed_at__isnull=False
)
_AGE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> dt.timedelta:
    """`90d`, `12h`, `30m`, `3600s`, `2w` -> a timedelta (ValueError otherwise)."""
    match = _AGE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age like 90d, 12h, 30m, 3600s or 2w")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class PurgeResult:
    cutoff: dt.datetime
    deleted: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, count: int) -> None:
        self.deleted[table] = self.deleted.get(table, 0) + count


def history_purge(
    *,
    older_than: dt.timedelta,
    now: dt.datetime | None = None,
    batch_size: int = PURGE_BATCH,
    dry_run: bool = False,
) -> PurgeResult:
    """Delete finished deliveries last touched before `now - older_than` (with their events,
    attempts and dead letters), then notifications older than that with no delivery left, then
    digest windows closed before it."""
    cutoff = (now or timezone.now()) - older_than
    result = PurgeResult(cutoff=cutoff)
    old_deliveries = Delivery.objects.filter(FINISHED_ROWS, updated_at__lt=cutoff)
    old_notifications = Notification.objects.filter(created_at__lt=cutoff).exclude(
        Exists(Delivery.objects.filter(notification=OuterRef("pk")))
    )
    if dry_run:
        ids = old_deliveries.values("id")
        result.add("deliveries", old_deliveries.count())
        result.add("events", DeliveryEvent.objects.filter(delivery__in=ids).count())
        result.add("attempts", Attempt.objects.filter(delivery__in=ids).count())
        result.add("dead_letters", DeadLetter.objects.filter(delivery__in=ids).count())
        result.add(
            "notifications",
            Notification.objects.filter(created_at__lt=cutoff)
            .exclude(
                Exists(Delivery.objects.filter(notification=OuterRef("pk")).exclude(id__in=ids))
            )
            .count(),
        )
        return result
    while True:
        batch = list(
            old_deliveries.order_by("updated_at").values_list("id", flat=True)[:batch_size]
        )
        if not batch:
            break
        with transaction.atomic():
            result.add("events", DeliveryEvent.objects.filter(delivery_id__in=batch).delete()[0])
            result.add("attempts", Attempt.objects.filter(delivery_id__in=batch).delete()[0])
            result.add("dead_letters", DeadLetter.objects.filter(delivery_id__in=batch).delete()[0])
            _, by_model = Delivery.objects.filter(id__in=batch).delete()
            result.add("deliveries", by_model.get(Delivery._meta.label, 0))
    while True:
        batch = list(
            old_notifications.order_by("created_at").values_list("id", flat=True)[:batch_size]
        )
        if not batch:
            break
        with transaction.atomic():
            result.add("notifications", Notification.objects.filter(id__in=batch).delete()[0])
    old_digests = Digest.objects.filter(closed_at__lt=cutoff)
    while batch := list(
        old_digests.order_by("closed_at").values_list("id", flat=True)[:batch_size]
    ):
        with transaction.atomic():
            result.add("digests", Digest.objects.filter(id__in=batch).delete()[0])
    for table, count in result.deleted.items():
        metrics.retention_purged(table=table, count=count)
    logger.info(
        "history purged", extra={"cutoff": cutoff.isoformat(), "deleted": dict(result.deleted)}
    )
    return result
