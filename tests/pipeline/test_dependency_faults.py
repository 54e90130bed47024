"""Faults of a real Redis under real processes: a Redis of the test's own is stopped and started
again (empty) under a running web server and worker. The API answers 503 with Retry-After while
it cannot accept, never a 500; once Redis is back every accepted notification is sent exactly
once. A send task that meets the fault is retried by Celery and sends once."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from apps.deliveries.models import Delivery, DeliveryStatus
from config.celery import app
from notifier.queues import MAINTENANCE_QUEUE
from tests.factories import RecipientFactory
from tests.pipeline.helpers import notify, wait_status
from tests.support.asgi import AsgiServer
from tests.support.processes import Simulator, Worker, wait_until
from tests.support.redis_server import RedisServer, broker_at

pytestmark = [pytest.mark.pipeline]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def post(url: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 - our own local server
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(response.read()),
            )
    except urllib.error.HTTPError as error:
        return (
            error.code,
            {k.lower(): v for k, v in error.headers.items()},
            json.loads(error.read() or b"null"),
        )


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def unhandled_errors(log: str) -> list[str]:
    """Log records of requests that ended in a 500 or with a traceback from the request
    handler. (A warning with a traceback from a part that copes, such as the throttle giving
    way, is not one.)"""
    found = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if record.get("status_code") == 500 or (
            record.get("name") == "django.request" and "exc_info" in record
        ):
            found.append(line)
    return found


def emails_by_delivery(sendgrid: Simulator) -> Counter[str]:
    return Counter(str(r["body"]["custom_args"]["delivery_id"]) for r in sendgrid.accepted())


def test_redis_down_is_503_then_every_accepted_notification_is_sent_once(
    transactional_db: None,
    own_redis: RedisServer,
    worker_env: dict[str, str],
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api_key: tuple[Any, str],
    demo: dict[str, object],
) -> None:
    client = demo["client"]
    for name in ("before", "during", "after"):
        RecipientFactory(client=client, external_id=name, email=f"{name}@example.com")
    env = {
        **worker_env,
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": own_redis.url,
        "QUEUE_DEPTH_CACHE_SECONDS": "0",
        "RECONCILE_AFTER_SECONDS": "1",
    }
    web = AsgiServer(env=env)
    try:
        url = f"{web.url}/api/v1/notifications"
        body = {
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
        }
        # Accepted while no worker runs: its message waits in Redis...
        status, _, before = post(url, {**body, "recipient": "before"}, api_key[1])
        assert status == 202, before

        # ... and is lost with everything else when Redis stops.
        own_redis.stop()
        status, headers, refused = post(url, {**body, "recipient": "during"}, api_key[1])
        ready_status, ready = get(f"{web.url}/readyz")

        assert status == 503, refused
        assert int(headers["retry-after"]) > 0
        assert refused["code"] == "unavailable"
        assert set(refused) == {"code", "message", "fields"}
        assert not Delivery.objects.filter(recipient__external_id="during").exists()
        assert ready_status == 503
        assert ready["checks"]["redis"].startswith("unavailable")
        assert ready["checks"]["broker"].startswith("unavailable")
        assert ready["checks"]["database"] == "ok"

        own_redis.start()  # back, empty
        status, _, after = post(url, {**body, "recipient": "after"}, api_key[1])
        assert status == 202, after
        log = web.log()
    finally:
        web.stop()
    assert unhandled_errors(log) == []

    worker_factory(env=env)
    after_id = after["deliveries"][0]["id"]
    before_id = before["deliveries"][0]["id"]
    wait_status(after_id, DeliveryStatus.SENT)
    # The message of `before` went with Redis's data; the reconciler's next run finds it.
    assert Delivery.objects.get(id=before_id).status == DeliveryStatus.QUEUED
    time.sleep(1.2)  # past RECONCILE_AFTER_SECONDS
    with broker_at(own_redis.url):
        app.send_task("deliveries.reconcile", queue=MAINTENANCE_QUEUE)
    wait_status(before_id, DeliveryStatus.SENT)

    time.sleep(1.0)  # a duplicate would show up by now
    assert emails_by_delivery(sendgrid) == {before_id: 1, after_id: 1}
    assert Delivery.objects.get(id=before_id).attempts == 1


def test_a_send_task_that_meets_redis_down_is_retried_by_celery_and_sends_once(
    transactional_db: None,
    own_redis: RedisServer,
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: Any,
    demo: dict[str, object],
) -> None:
    # The worker's Redis for rate limits and breakers is down; its broker is not.
    own_redis.stop()
    worker = worker_factory(
        env={
            "REDIS_URL": own_redis.url,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SEND_TASK_MAX_RETRIES": "50",
            "SEND_TASK_RETRY_BACKOFF_MAX": "1",
        }
    )
    delivery_id = notify(api, channels=["email"])["deliveries"][0]["id"]

    wait_until(lambda: "retry: Retry in" in worker.log(), timeout=20)
    delivery = Delivery.objects.get(id=delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.QUEUED, 0)
    assert sendgrid.requests() == []

    own_redis.start()
    delivery = wait_status(delivery_id, DeliveryStatus.SENT, timeout=20)

    assert delivery.attempts == 1
    assert emails_by_delivery(sendgrid) == {delivery_id: 1}
    assert "ConnectionError" in worker.log()
