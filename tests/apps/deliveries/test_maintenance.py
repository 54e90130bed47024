"""Beat jobs: the reconciler, release of scheduled/deferred deliveries, device pruning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.client
from django.conf import settings
from django.utils import timezone

from apps.core.broker import NotSent, publish_client, queue_depths
from apps.deliveries import maintenance
from apps.deliveries.maintenance import deliveries_reconcile, deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.deliveries.queueing import LEDGER_KEY, publish_sends
from apps.recipients.models import Device
from apps.recipients.services import devices_prune_inactive
from config.celery import app
from notifier.queues import ALL_QUEUES, queue_name
from tests.factories import DeliveryFactory, DeviceFactory, NotificationFactory
from tests.support.processes import ROOT
from tests.support.queues import queued_delivery_counts, transaction_answer_lost

pytestmark = [pytest.mark.django_db]

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def make(status: str, *, ago: float, **fields: Any) -> Delivery:
    """A delivery in `status`, last updated `ago` seconds before NOW."""
    delivery = DeliveryFactory(status=status, notification=NotificationFactory(), **fields)
    Delivery.objects.filter(id=delivery.id).update(updated_at=NOW - dt.timedelta(seconds=ago))
    return delivery


def published() -> int:
    """Deliveries in the send messages waiting in the broker (a message carries a batch)."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return sum(queued_delivery_counts(broker).values())


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


def test_reconciler_leaves_a_draining_backlog_alone_until_redis_loses_it(
    clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    grace = settings.RECONCILE_AFTER_SECONDS
    waiting = [make(DeliveryStatus.QUEUED, ago=0) for _ in range(3)]
    # Published for real: the messages sit in Redis behind a backlog.
    publish_sends([(str(d.id), d.channel, d.priority) for d in waiting])
    Delivery.objects.filter(id__in=[d.id for d in waiting]).update(
        updated_at=now - dt.timedelta(seconds=grace + 5)
    )
    assert published() == 3

    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=now) == 0
    assert published() == 3  # not multiplied

    clean_redis.flushdb()  # the broker lost everything, the ledger with it
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=now) == 3
    assert published() == 3
    for delivery in waiting:
        assert delivery.events.filter(detail="re-queued by the reconciler").count() == 1


def test_reconciler_takes_a_message_unconsumed_for_too_long_for_lost(
    clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    grace = settings.RECONCILE_AFTER_SECONDS
    held = make(DeliveryStatus.QUEUED, ago=0)
    publish_sends([(str(held.id), held.channel, held.priority)])
    Delivery.objects.filter(id=held.id).update(updated_at=now - dt.timedelta(seconds=grace + 5))
    later = now + dt.timedelta(seconds=settings.RECONCILE_LOST_AFTER_SECONDS + 1)

    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=later) == 1

    assert held.events.filter(detail="re-queued by the reconciler").count() == 1


def test_reconciler_requeues_what_a_dead_worker_fetched_and_never_claimed(
    clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any], settings: Any
) -> None:
    grace = settings.RECONCILE_AFTER_SECONDS
    settings.SEND_BATCH_SPREAD = 1  # both in one message
    fetched = [make(DeliveryStatus.QUEUED, ago=0, priority="high") for _ in range(2)]
    waiting = make(DeliveryStatus.QUEUED, ago=0, priority="low")
    publish_sends([(str(d.id), d.channel, d.priority) for d in (*fetched, waiting)])
    # A worker takes the first message (a batch of two) off its queue (unacknowledged, as
    # acks_late does) and is killed before it claims the rows: the message now sits in kombu's
    # unacked set.
    # (The connection stays open: closing it would hand the message back, as a warm shutdown.)
    with app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(
            queue_name(fetched[0].channel, fetched[0].priority), no_ack=False
        )
        assert message is not None
        later = timezone.now() + dt.timedelta(seconds=grace + 2)

        with django_capture_on_commit_callbacks(execute=True):
            assert deliveries_reconcile(now=later) == 2

    for delivery in fetched:
        assert delivery.events.filter(detail="re-queued by the reconciler").count() == 1
    assert not waiting.events.filter(detail="re-queued by the reconciler").exists()


def test_reconciler_walks_every_stuck_row_in_batches(
    clean_redis: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(maintenance, "BATCH", 2)
    lost = [
        make(DeliveryStatus.QUEUED, ago=settings.RECONCILE_AFTER_SECONDS + 1 + i) for i in range(5)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=NOW) == 5

    assert published() == 5
    assert Delivery.objects.filter(id__in=[d.id for d in lost], status="queued").count() == 5
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_reconcile(now=NOW) == 0  # all in the ledger now


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


@pytest.mark.parametrize("retry", [True, False])
def test_a_publish_that_cannot_connect_once_tries_again_as_celerys_policy_spaces_it(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch, retry: bool
) -> None:
    """Refused before anything was sent: trying again cannot write anything twice."""
    delivery = make(DeliveryStatus.QUEUED, ago=0)
    pool = publish_client().connection_pool
    get = pool.get_connection
    refused = ["once"]

    def refused_once(*args: Any, **kwargs: Any) -> Any:
        if refused:
            refused.pop()
            raise redis.ConnectionError("Error 111 connecting: connection refused")
        return get(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", refused_once)
    monkeypatch.setitem(app.conf, "task_publish_retry_policy", {"interval_start": 0})
    monkeypatch.setitem(app.conf, "task_publish_retry", retry)
    if retry:
        publish_sends([(str(delivery.id), delivery.channel, delivery.priority)])
    else:
        with pytest.raises(NotSent):
            publish_sends([(str(delivery.id), delivery.channel, delivery.priority)])

    published = clean_redis.zscore(LEDGER_KEY, str(delivery.id)) is not None
    assert (published, queued_delivery_counts(clean_redis)) == (
        (True, {queue_name(delivery.channel, delivery.priority): 1}) if retry else (False, {})
    )


def test_a_failed_publish_leaves_no_ledger_entry(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: the transaction ran but its answer was lost with the connection. Whether
    the message is there is unknown, so the entry goes: the reconciler sees the delivery as
    missing and re-sends it (a duplicate message is dropped by the claim)."""
    delivery = make(DeliveryStatus.QUEUED, ago=0)
    sent = transaction_answer_lost(monkeypatch, redis.ConnectionError)
    monkeypatch.setitem(app.conf, "task_publish_retry", True)  # still not sent again
    with pytest.raises(redis.ConnectionError):
        publish_sends([(str(delivery.id), delivery.channel, delivery.priority)])

    assert sent == [1]

    assert clean_redis.zscore(LEDGER_KEY, str(delivery.id)) is None
    # The transaction ran once: one message waits (the queue's depth), not one per try.
    monkeypatch.undo()
    assert queue_depths(client=clean_redis) == {
        q: int(q == queue_name(delivery.channel, delivery.priority)) for q in ALL_QUEUES
    }
