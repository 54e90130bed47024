"""A broken Redis, broker or database is a 503 with Retry-After before anything is committed,
and never an error after: what was committed is answered as accepted, and a publish that failed
is the reconciler's to repair on its normal cadence."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries import guards
from apps.deliveries.backpressure import queue_depth, queue_depth_forget
from apps.deliveries.maintenance import deliveries_reconcile
from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus, Notification
from apps.deliveries.queueing import LEDGER_KEY, PUBLISH_FAILURES, publish_sends
from tests.factories import ApiKeyFactory, DeadLetterFactory, DeliveryFactory
from tests.support.processes import free_port
from tests.support.queues import queued_delivery_ids
from tests.support.redis_server import broker_at, unreachable_url
from tests.support.webhooks import SENDGRID_URL, SendGridSigner, sendgrid_event

URL = "/api/v1/notifications"
BODY = {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-1"}}


@pytest.fixture
def fresh_depths(settings: Any) -> Iterator[None]:
    """Every request reads the queue depth afresh."""
    settings.QUEUE_DEPTH_CACHE_SECONDS = 0
    queue_depth_forget()
    yield
    queue_depth_forget()


@pytest.fixture
def depth_read_before_the_outage(settings: Any, clean_redis: redis.Redis) -> Iterator[None]:
    """A queue-depth reading taken while the broker answered and still cached when it stops:
    a request then passes the check and commits before the publish finds the broker gone."""
    settings.QUEUE_DEPTH_CACHE_SECONDS = 3600
    queue_depth_forget()
    queue_depth()
    yield
    queue_depth_forget()


@pytest.fixture
def ops() -> APIClient:
    _, raw = ApiKeyFactory.create_with_raw(is_ops=True, name="ops-team")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def publish_failures() -> float:
    return float(PUBLISH_FAILURES._value.get())


def waiting_in_broker(client: redis.Redis) -> list[str]:
    return [pk for ids in queued_delivery_ids(client).values() for pk in ids]


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == "unavailable"


def reconcile_on_cadence() -> int:
    """The reconciler's next run once the rows are past their grace (not RECONCILE_LOST_AFTER)."""
    later = timezone.now() + dt.timedelta(seconds=settings.RECONCILE_AFTER_SECONDS + 1)
    return deliveries_reconcile(now=later)


def test_post_with_the_one_redis_down_is_503_and_creates_nothing(
    transactional_db: None, api: APIClient, demo: dict[str, object], fresh_depths: None
) -> None:
    # Given the deployment's one Redis (throttle, queue depths, broker) unreachable
    dead = unreachable_url()
    with broker_at(dead), pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "REDIS_URL", dead)
        response = api.post(URL, BODY, format="json")

    assert_unavailable(response)
    assert response["Retry-After"] == str(settings.DEPENDENCY_RETRY_AFTER_SECONDS)
    assert Notification.objects.count() == 0


def test_post_with_only_the_broker_down_is_503_and_creates_nothing(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, object],
    fresh_depths: None,
    clean_redis: redis.Redis,
) -> None:
    with broker_at(unreachable_url()):
        response = api.post(URL, BODY, format="json")

    assert_unavailable(response)
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_a_publish_that_fails_after_commit_is_202_counted_and_reconciled(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, object],
    depth_read_before_the_outage: None,
    clean_redis: redis.Redis,
) -> None:
    before = publish_failures()

    with broker_at(unreachable_url()):
        response = api.post(URL, {**BODY, "channels": ["email"]}, format="json")

    # The notification was committed: the client is told so, not asked to retry.
    assert response.status_code == 202, response.content
    (delivery_id,) = [d["id"] for d in response.json()["deliveries"]]
    assert Delivery.objects.get(id=delivery_id).status == DeliveryStatus.QUEUED
    assert publish_failures() == before + 1
    assert waiting_in_broker(clean_redis) == []

    # With the broker back, the reconciler's next run publishes it, once.
    assert reconcile_on_cadence() == 1
    assert waiting_in_broker(clean_redis) == [delivery_id]
    assert reconcile_on_cadence() == 0


def dead_after_a_send(clean_redis: redis.Redis) -> DeadLetter:
    """A delivery that was published once (the ledger keeps that message's entry), sent, and
    died; its dead letter."""
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.QUEUED)
    publish_sends([(str(delivery.id), delivery.channel, delivery.priority)])
    clean_redis.delete(*clean_redis.keys("sms.*"))  # consumed by a worker
    Delivery.objects.filter(id=delivery.id).update(status=DeliveryStatus.DEAD, attempts=6)
    assert clean_redis.zscore(LEDGER_KEY, str(delivery.id)) is not None
    return DeadLetterFactory(delivery=delivery, channel="sms", attempts=6)


@pytest.mark.parametrize("bulk", [False, True])
def test_a_replay_whose_publish_fails_is_reconciled_on_cadence_despite_the_old_ledger_entry(
    transactional_db: None,
    ops: APIClient,
    depth_read_before_the_outage: None,
    clean_redis: redis.Redis,
    bulk: bool,
) -> None:
    letter = dead_after_a_send(clean_redis)
    before = publish_failures()

    with broker_at(unreachable_url()):
        if bulk:
            response = ops.post("/api/v1/dead-letters/replay", {"ids": [letter.pk]}, format="json")
        else:
            response = ops.post(f"/api/v1/dead-letters/{letter.pk}/replay")

    assert response.status_code == 200, response.content
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert Delivery.objects.get(id=letter.delivery_id).status == DeliveryStatus.QUEUED
    assert publish_failures() == before + 1
    # The first message's entry is still in the ledger: it must not pass for the replay's.
    assert reconcile_on_cadence() == 1
    assert waiting_in_broker(clean_redis) == [str(letter.delivery_id)]


@pytest.mark.parametrize("bulk", [False, True])
def test_a_replay_with_the_broker_down_is_503_and_replays_nothing(
    transactional_db: None,
    ops: APIClient,
    fresh_depths: None,
    clean_redis: redis.Redis,
    bulk: bool,
) -> None:
    letter = dead_after_a_send(clean_redis)

    with broker_at(unreachable_url()):
        if bulk:
            response = ops.post("/api/v1/dead-letters/replay", {"ids": [letter.pk]}, format="json")
        else:
            response = ops.post(f"/api/v1/dead-letters/{letter.pk}/replay")

    assert_unavailable(response)
    letter.refresh_from_db()
    assert letter.replayed_at is None
    assert Delivery.objects.get(id=letter.delivery_id).status == DeliveryStatus.DEAD


@contextmanager
def database_unreachable_now() -> Iterator[None]:
    """The default connection points at a port nothing listens on until the test ends."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["PORT"] = free_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.parametrize(("method", "url"), [("get", URL), ("post", URL)])
def test_the_database_down_is_503_with_retry_after(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, object],
    fresh_depths: None,
    clean_redis: redis.Redis,
    method: str,
    url: str,
) -> None:
    with database_unreachable_now():
        response = getattr(api, method)(url, BODY, format="json")

    assert_unavailable(response)
    assert Notification.objects.count() == 0


def test_redis_down_alone_does_not_stop_the_api(
    transactional_db: None,
    api: APIClient,
    demo: dict[str, object],
    fresh_depths: None,
    clean_redis: redis.Redis,
) -> None:
    # REDIS_URL apart from the broker: throttles give way, the queues are still counted.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "REDIS_URL", unreachable_url())
        from apps.clients import auth

        auth._key_bucket.cache_clear()
        try:
            response = api.post(URL, {**BODY, "channels": ["email"]}, format="json")
        finally:
            auth._key_bucket.cache_clear()

    assert response.status_code == 202, response.content
    assert len(waiting_in_broker(clean_redis)) == 1


def test_a_webhook_with_the_database_down_is_503_so_the_provider_retries(
    transactional_db: None, settings: Any
) -> None:
    # Outside DRF (a plain Django view): the same mapping, through handler500.
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    payload = json.dumps([sendgrid_event("delivered", str(uuid.uuid4()), "a@example.com")])

    with database_unreachable_now():
        response = Client(raise_request_exception=False).post(
            SENDGRID_URL, payload, content_type="application/json", **signer.headers(payload)
        )

    assert_unavailable(response)


def test_metrics_with_redis_and_broker_down_still_answer(transactional_db: None) -> None:
    # Verified, not changed: the scrape-time collectors report the broker as down (`_up` 0).
    dead = unreachable_url()
    guards.provider_breaker.cache_clear()
    try:
        with broker_at(dead), pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "REDIS_URL", dead)
            response = Client().get("/metrics")
    finally:
        guards.provider_breaker.cache_clear()

    assert response.status_code == 200
    assert b"notifier_queue_depth_up 0.0" in response.content
