"""Backpressure: past QUEUE_DEPTH_LIMIT waiting messages, POST /notifications is a 503 with
Retry-After in the error shape, and nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from apps.deliveries.backpressure import queue_depth, queue_depth_forget
from apps.deliveries.models import Delivery, DeliveryEvent, Notification
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

BODY = {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-1"}}


@pytest.fixture
def bound(settings: Any, clean_redis: redis.Redis) -> None:
    settings.QUEUE_DEPTH_LIMIT = 3
    settings.BACKPRESSURE_RETRY_AFTER_SECONDS = 7
    settings.QUEUE_DEPTH_CACHE_SECONDS = 0
    queue_depth_forget()


def test_deep_queues_answer_503_with_retry_after_and_create_nothing(
    transactional_db: None,
    bound: None,
    api: APIClient,
    demo: dict[str, object],
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
) -> None:
    # Given four email messages waiting in Redis (no worker running), over a bound of three
    for n in range(4):
        response = api.post(
            "/api/v1/notifications",
            {**BODY, "channels": ["email"], "idempotency_key": f"k{n}"},
            format="json",
        )
        assert response.status_code == 202
    assert queue_depth() == 4
    counts = (Notification.objects.count(), Delivery.objects.count(), DeliveryEvent.objects.count())

    # When another notification is posted
    response = api.post("/api/v1/notifications", BODY, format="json")

    # Then it is refused in the error shape, with Retry-After, and nothing was created
    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert response.json() == {
        "code": "unavailable",
        "message": "The delivery queues are full; retry later.",
        "fields": {},
    }
    assert (
        Notification.objects.count(),
        Delivery.objects.count(),
        DeliveryEvent.objects.count(),
    ) == counts
    assert queue_depth() == 4

    # And once a worker has drained the queues, posting works again
    worker_factory()
    wait_until(lambda: len(sendgrid.accepted()) == 4, timeout=30)
    wait_until(lambda: queue_depth() == 0, timeout=10)
    assert api.post("/api/v1/notifications", BODY, format="json").status_code == 202


def test_the_depth_reading_is_cached_per_process(
    transactional_db: None,
    settings: Any,
    clean_redis: redis.Redis,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    settings.QUEUE_DEPTH_LIMIT = 0
    settings.QUEUE_DEPTH_CACHE_SECONDS = 60
    queue_depth_forget()
    assert queue_depth() == 0  # read and cached: empty
    clean_redis.lpush("email.normal", b"{}")  # a message appears

    # Within the cache period the old reading stands ...
    assert (
        api.post(
            "/api/v1/notifications", {**BODY, "channels": ["inapp"]}, format="json"
        ).status_code
        == 202
    )
    # ... and a fresh reading sees the depth
    queue_depth_forget()
    assert api.post("/api/v1/notifications", BODY, format="json").status_code == 503
