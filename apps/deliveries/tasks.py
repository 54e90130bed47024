"""Celery tasks of the delivery pipeline: thin adapters over the services."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from celery import shared_task
from django.conf import settings

from apps.deliveries.maintenance import deliveries_reconcile, deliveries_release_due
from apps.deliveries.queueing import SEND_TASK
from apps.deliveries.retention import history_purge
from apps.deliveries.sending import deliveries_attempt


@shared_task(name=SEND_TASK, ignore_result=True, soft_time_limit=30, time_limit=60)
def send_deliveries(delivery_ids: list[str] | str) -> dict[str, int]:
    """Make one attempt at each delivery of the batch (a duplicate or finished delivery is a
    no-op). A single id is a message published before batching. Returns outcome counts."""
    ids = [delivery_ids] if isinstance(delivery_ids, str) else list(delivery_ids)
    outcomes = deliveries_attempt(delivery_ids=ids)
    return dict(Counter(outcome.result for outcome in outcomes.values()))


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
