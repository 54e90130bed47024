"""Idempotency under concurrency, on PostgreSQL: the unique (client, key) index decides.

Twenty threads, each with its own database connection, post at the same instant. The first
INSERT wins; the others block on the unique index until it commits, then read the committed
notification and answer with its stored 202 body. So every caller gets the original response
(the contract: same key + same body -> the original response), none waits for a retry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from apps.deliveries.models import Delivery, Notification
from tests.support.concurrency import post_together
from tests.support.queues import queued_counts

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
}
THREADS = 20


def fire_together(raw_key: str, bodies: list[dict[str, Any]]) -> list[tuple[int, Any, bool]]:
    """POST each body from its own thread and connection, all released at once."""
    return post_together(raw_key, URL, bodies, HTTP_IDEMPOTENCY_KEY="order-A-1")


@pytest.mark.django_db(transaction=True)
def test_20_parallel_requests_same_key_same_body_create_one_notification(
    api_key: tuple[Any, str], demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    results = fire_together(api_key[1], [BODY] * THREADS)

    assert len(results) == THREADS
    assert [status for status, _, _ in results] == [202] * THREADS
    bodies = {json.dumps(body, sort_keys=True) for _, body, _ in results}
    assert len(bodies) == 1
    assert sorted(replayed for _, _, replayed in results) == [False] + [True] * (THREADS - 1)
    notification = Notification.objects.get()
    assert json.loads(bodies.pop())["id"] == str(notification.id)
    assert Delivery.objects.count() == 4
    # Only the winner published: email, sms and inapp (push is skipped: no device).
    assert sum(queued_counts(clean_redis).values()) == 3


@pytest.mark.django_db(transaction=True)
def test_20_parallel_requests_same_key_different_bodies_one_wins_the_rest_409(
    api_key: tuple[Any, str], demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    bodies = [{**BODY, "variables": {"order_id": f"A-{i}"}} for i in range(THREADS)]

    results = fire_together(api_key[1], bodies)

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [202] + [409] * (THREADS - 1)
    conflicts = [body for status, body, _ in results if status == 409]
    assert all(body["code"] == "conflict" for body in conflicts)
    assert Notification.objects.count() == 1
