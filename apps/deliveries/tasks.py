"""Celery tasks of the delivery pipeline: thin adapters over the services."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from celery import shared_task
from django.conf import settings

from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.digests import digests_close_due
from apps.deliveries.fanout import FAN_OUT_TASK, fan_out_run, fan_outs_resume
from apps.deliveries.maintenance import deliveries_reconcile, deliveries_release_due
from apps.deliveries.queueing import SEND_TASK
from apps.deliveries.retention import history_purge
from apps.deliveries.sending import deliveries_attempt


@shared_task(
    name=SEND_TASK,
    ignore_result=True,
    soft_time_limit=30,
    time_limit=60,
    # PostgreSQL, Redis or the broker failing under the batch: Celery publishes the message
    # again after an exponential, jittered delay, a bounded number of times (then the
    # reconciler). Provider failures never get here: they are recorded per delivery, with their
    # attempt, and retried by the delivery's own policy (sending.py).
    autoretry_for=DEPENDENCY_ERRORS,
    retry_backoff=True,
    retry_backoff_max=settings.SEND_TASK_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.SEND_TASK_MAX_RETRIES,
)
def send_deliveries(delivery_ids: list[str] | str) -> dict[str, int]:
    """Make one attempt at each delivery of the batch (a duplicate or finished delivery is a
    no-op). Returns outcome counts.

    A retry after a fault re-runs the whole batch safely: only rows still `queued`/`retrying`
    are claimed, so a delivery the provider already accepted is never sent by the retry. Where
    the fault strikes decides the rest: before the claim, nothing moved; between the claim and
    the first provider call, the batch hands its rows back uncounted (sending.py); after a
    provider accepted but before `sent` was written (the database fails at the write), the row
    stays `sending` and the reconciler re-queues it after SEND_STUCK_AFTER_SECONDS: a possible
    duplicate, the same window as a worker killed mid-batch (DESIGN.md)."""
    # A message published before batches carried one id as a string: still in the broker
    # during an upgrade, it must not be split into characters.
    ids = [delivery_ids] if isinstance(delivery_ids, str) else list(delivery_ids)
    outcomes = deliveries_attempt(delivery_ids=ids)
    return dict(Counter(outcome.result for outcome in outcomes.values()))


@shared_task(name="deliveries.reconcile", ignore_result=True, soft_time_limit=60)
def reconcile() -> int:
    """Re-queue deliveries stuck past their deadline."""
    return deliveries_reconcile()


@shared_task(name="deliveries.release_due", ignore_result=True, soft_time_limit=60)
def release_due() -> int:
    """Queue scheduled and deferred deliveries that are due (the timers queue)."""
    return deliveries_release_due()


@shared_task(name="deliveries.digests_close_due", ignore_result=True, soft_time_limit=60)
def close_due_digests() -> int:
    """Close a batch of digest windows past their time (the timers queue; beat, every second)."""
    return digests_close_due()


@shared_task(
    name="deliveries.purge_history", ignore_result=True, soft_time_limit=600, time_limit=900
)
def purge_history() -> int:
    """Delete finished delivery history older than RETENTION_DAYS, in batches."""
    result = history_purge(older_than=dt.timedelta(days=settings.RETENTION_DAYS))
    return sum(result.deleted.values())


@shared_task(
    name=FAN_OUT_TASK,
    ignore_result=True,
    # A run works FANOUT_SLICE_SECONDS, then queues its continuation.
    soft_time_limit=settings.FANOUT_SLICE_SECONDS + 60,
    time_limit=settings.FANOUT_SLICE_SECONDS + 90,
    # A dependency failing mid-chunk rolls the chunk back; the run is tried again later (and
    # failing that, the resume sweep queues it once the fan-out has stood still long enough).
    autoretry_for=DEPENDENCY_ERRORS,
    retry_backoff=True,
    retry_backoff_max=settings.SEND_TASK_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.SEND_TASK_MAX_RETRIES,
)
def fan_out(notification_id: str, *, resumed: bool = False, token: str = "") -> str:
    """Create the next chunks of a topic notification's deliveries (fanout.py)."""
    return fan_out_run(notification_id=notification_id, resumed=resumed, token=token).value


@shared_task(name="deliveries.fan_outs_resume", ignore_result=True, soft_time_limit=60)
def resume_fan_outs() -> int:
    """Queue again the fan-outs whose worker died mid-way."""
    return fan_outs_resume()
