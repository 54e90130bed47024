"""Beat jobs: the reconciler, release of scheduled/deferred deliveries, device pruning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.deliveries.backpressure import queue_depth, queue_depth_forget
from apps.deliveries.maintenance import deliveries_reconcile, deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.recipients.models import Device
from apps.recipients.services import devices_prune_inactive
from tests.factories import DeliveryFactory, DeviceFactory, NotificationFactory
from tests.support.processes import ROOT

pytestmark = [pytest.mark.django_db]

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def make(status: str, *, ago: float, **fields: Any) -> Delivery:
    """A delivery in `status`, last updated `ago` seconds before NOW."""
    delivery = DeliveryFactory(status=status, notification=NotificationFactory(), **fields)
    Delivery.objects.filter(id=delivery.id).update(updated_at=NOW - dt.timedelta(seconds=ago))
    return delivery


def published() -> int:
    queue_depth_forget()
    return queue_depth()


def test_reconciler_requeues_only_what_is_stuck(
    clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    grace = settings.RECONCILE_AFTER_SECONDS
    stuck_after = settings.SEND_STUCK_AFTER_SECONDS
    lost = make(DeliveryStatus.QUEUED, ago=grace + 5)
    fresh = make(DeliveryStatus.QUEUED, ago=grace - 5)
    # Told to wait for a breaker or rate limit until later: not lost.
    waiting = make(
        DeliveryStatus.QUEUED, ago=grace + 5, next_attempt_at=NOW + dt.timedelta(seconds=30)
    )
    overdue_retry = make(
        DeliveryStatus.RETRYING,
        ago=grace * 3,
        next_attempt_at=NOW - dt.timedelta(seconds=grace + 5),
    )
    due_retry = make(
        DeliveryStatus.RETRYING, ago=grace * 3, next_attempt_at=NOW - dt.timedelta(seconds=5)
    )
    dead_worker = make(DeliveryStatus.SENDING, ago=stuck_after + 5)
    in_flight = make(DeliveryStatus.SENDING, ago=stuck_after - 5)
    done = make(DeliveryStatus.SENT, ago=grace * 10)

    with django_capture_on_commit_callbacks(execute=True):
        count = deliveries_reconcile(now=NOW)

    assert count == 3
    status = dict(Delivery.objects.values_list("id", "status"))
    for delivery in (lost, overdue_retry, dead_worker):
        assert status[delivery.id] == DeliveryStatus.QUEUED
    for delivery in (fresh, waiting):  # still queued, but not touched
        assert not delivery.events.filter(detail="re-queued by the reconciler").exists()
    assert status[due_retry.id] == DeliveryStatus.RETRYING
    assert status[in_flight.id] == DeliveryStatus.SENDING
    assert status[done.id] == DeliveryStatus.SENT
    for delivery in (lost, overdue_retry, dead_worker):
        assert delivery.events.filter(detail="re-queued by the reconciler").count() == 1
    assert published() == 3


def test_release_queues_due_scheduled_and_deferred_only(
    clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    past, future = NOW - dt.timedelta(seconds=1), NOW + dt.timedelta(minutes=5)
    due_deferred = make(DeliveryStatus.DEFERRED, ago=600, not_before=past)
    due_scheduled = make(DeliveryStatus.SCHEDULED, ago=600, not_before=past)
    later = make(DeliveryStatus.DEFERRED, ago=600, not_before=future)

    with django_capture_on_commit_callbacks(execute=True):
        count = deliveries_release_due(now=NOW)

    assert count == 2
    for delivery in (due_deferred, due_scheduled):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.QUEUED
        assert delivery.events.filter(detail="released: due").count() == 1
    later.refresh_from_db()
    assert later.status == DeliveryStatus.DEFERRED
    assert published() == 2


def test_prune_deletes_only_devices_unseen_for_the_configured_age() -> None:
    days = settings.DEVICE_INACTIVE_DAYS
    stale = DeviceFactory()
    stale_inactive = DeviceFactory(active=False)
    recent = DeviceFactory()
    Device.objects.filter(id__in=[stale.id, stale_inactive.id]).update(
        last_seen_at=NOW - dt.timedelta(days=days, seconds=1)
    )
    Device.objects.filter(id=recent.id).update(last_seen_at=NOW - dt.timedelta(days=days - 1))

    assert devices_prune_inactive(now=NOW) == 2

    assert list(Device.objects.values_list("id", flat=True)) == [recent.id]


def test_every_beat_job_names_a_task() -> None:
    # Read from the sources: importing the task modules here would register them on this
    # process's Celery app and change how other tests' publishes look.
    sources = "".join(p.read_text() for p in (ROOT / "apps").glob("*/tasks.py"))
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert f'name="{entry["task"]}"' in sources, entry["task"]


def test_release_is_a_noop_without_due_rows(clean_redis: redis.Redis) -> None:
    make(DeliveryStatus.DEFERRED, ago=1, not_before=timezone.now() + dt.timedelta(hours=1))

    assert deliveries_release_due() == 0
    assert published() == 0
