"""Losing a worker or Redis costs delay, never the notification: a worker SIGKILLed mid-send,
and Redis flushed while deliveries are queued; the reconciler (beat's job) repairs both."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from apps.deliveries.backpressure import queue_depth, queue_depth_forget
from apps.deliveries.maintenance import deliveries_reconcile
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus
from config.celery import app
from notifier.queues import MAINTENANCE_QUEUE
from tests.factories import RecipientFactory
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

# The reconciler as beat would run it, but often: anything queued 1 s, or sending 3 s, is stuck.
RECONCILE_ENV = {"RECONCILE_AFTER_SECONDS": "1", "SEND_STUCK_AFTER_SECONDS": "3"}


def post_email(api: APIClient, recipient: str, order: str = "A-1") -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": recipient,
            "template": "order_shipped",
            "variables": {"order_id": order},
            "channels": ["email"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return str(response.json()["deliveries"][0]["id"])


def reconcile_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Send the reconcile task to the worker every second (beat's job) until `predicate`."""

    def tick() -> bool:
        if predicate():
            return True
        app.send_task("deliveries.reconcile", queue=MAINTENANCE_QUEUE)
        return False

    wait_until(tick, timeout=timeout, interval=1.0)


def test_worker_killed_mid_send_still_sends_once_or_a_counted_duplicate(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given a send in flight: SendGrid takes 4 s to answer the first request
    sendgrid.fault(kind="latency", ms=4000, count=1)
    doomed = worker_factory(env=RECONCILE_ENV, name="doomed")
    delivery_id = post_email(api, "user-1")
    wait_until(
        lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENDING).exists(),
        timeout=20,
    )
    time.sleep(1.0)  # the HTTP request is open at the simulator

    # When the whole worker is SIGKILLed, and a new one starts (beat runs the reconciler)
    doomed.kill()
    assert Delivery.objects.get(id=delivery_id).status == DeliveryStatus.SENDING
    worker_factory(env=RECONCILE_ENV, name="survivor")
    reconcile_until(
        lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENT).exists(),
        timeout=60,
    )

    # Then it was sent: once, or twice where the simulator accepted the killed request too
    # (the only window for a duplicate: after the provider's accept, before our commit).
    time.sleep(4)  # let the killed request's latency run out at the simulator
    keys = Counter(r["key"] for r in sendgrid.accepted())
    assert set(keys) == {delivery_id}
    duplicates = keys[delivery_id] - 1
    assert duplicates in (0, 1)
    delivery = Delivery.objects.get(id=delivery_id)
    # The killed attempt claimed (and counted) but never finished: no Attempt row for it.
    assert delivery.attempts == 2
    assert [(a.number, a.outcome) for a in delivery.attempt_rows.all()] == [(2, "sent")]
    timeline = [e.detail for e in delivery.events.all()]
    assert "re-queued by the reconciler" in timeline
    print(f"SIGKILL mid-send: sent, duplicates counted by the simulator: {duplicates}")


def test_redis_flushed_while_queued_the_reconciler_requeues_and_all_are_sent(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    clean_redis: redis.Redis,
    settings: Any,
) -> None:
    # Given a running worker working through a backlog of ten emails, 1 s each
    sendgrid.fault(kind="latency", ms=1000)
    worker_factory(env=RECONCILE_ENV, concurrency=1)
    client = demo["client"]
    for n in range(2, 11):
        RecipientFactory(client=client, external_id=f"user-{n}")
    # One bulk request: ten messages of one delivery each, queued at once (ten single POSTs
    # took long enough on a loaded machine for the worker to drain four of them meanwhile)
    response = api.post(
        "/api/v1/notifications",
        {
            "recipients": [f"user-{n}" for n in range(1, 11)],
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    ids = [
        str(pk)
        for pk in Delivery.objects.filter(notification_id=response.json()["id"]).values_list(
            "id", flat=True
        )
    ]
    assert len(ids) == 10
    queue_depth_forget()
    assert queue_depth() >= 6
    wait_until(lambda: len(sendgrid.accepted()) >= 1, timeout=30)

    # A backlog that is only slow is left alone: its messages are in Redis (the publish ledger
    # says so), so the reconciler, though every row is past its grace, re-queues none of them.
    settings.RECONCILE_AFTER_SECONDS = 1
    time.sleep(1.5)
    backlog = Delivery.objects.filter(id__in=ids, status=DeliveryStatus.QUEUED).count()
    assert backlog >= 5
    assert deliveries_reconcile() == 0
    assert not DeliveryEvent.objects.filter(
        delivery_id__in=ids, detail="re-queued by the reconciler"
    ).exists()

    # When Redis loses everything (this test's own database only): queues, unacked messages
    clean_redis.flushdb()
    queue_depth_forget()
    assert queue_depth() == 0
    time.sleep(2)
    lost = Delivery.objects.filter(id__in=ids, status=DeliveryStatus.QUEUED).count()
    assert lost >= 5  # the messages are gone; the rows are not

    # Then the reconciler re-queues them from PostgreSQL and every one is sent exactly once
    reconcile_until(
        lambda: Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENT).count() == 10,
        timeout=90,
    )
    keys = Counter(r["key"] for r in sendgrid.accepted())
    assert keys == Counter(dict.fromkeys(ids, 1))
    print(f"Redis FLUSHDB: {lost} queued deliveries lost from Redis, all 10 sent once")
