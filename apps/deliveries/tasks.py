"""Celery tasks of the delivery pipeline: thin adapters over the services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from apps.deliveries.maintenance import deliveries_reconcile, deliveries_release_due
from apps.deliveries.queueing import SEND_TASK
from apps.deliveries.retention import history_purge
from apps.deliveries.sending import delivery_attempt


@shared_task(name=SEND_TASK, ignore_result=True, soft_time_limit=30, time_limit=60)
def send_delivery(delivery_id: str) -> str:
    """Make one attempt at a delivery (a duplicate or finished delivery is a no-op)."""
    return delivery_attempt(delivery_id=delivery_id).result


@shared_task(name="deliveries.reconcile", ignore_result=True, soft_time_limit=60)
def reconcile() -> int:
    """Re-queue deliveries stuck past their deadline."""
    return deliveries_reconcile()


@shared_task(name="deliveries.release_due", ignore_result=True, soft_time_limit=60)
def release_due() -> int:
    """Queue scheduled and deferred deliveries that are due."""
    return deliveries_release_due()


@shared_task(
    name="deliveries.purge_history", ignore_result=True, soft_time_limit=600, time_limit=900
)
def purge_history() -> int:
    """Delete finished delivery history older than RETENTION_DAYS, in batches."""
    result = history_purge(older_than=dt.timedelta(days=settings.RETENTION_DAYS))
    return sum(result.deleted.values())
