"""Outbound webhooks through the real pipeline: a notification sent by the real email worker to
the SendGrid simulator reaches a real receiver on 127.0.0.1 as a signed `delivery.sent`; the
webhooks worker retries a 500, dead-letters a receiver that stays down (replayed from the API),
and a receiver that holds every webhook never delays a send (its own queue and worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.webhooks.models import MessageStatus, WebhookMessage
from notifier.queues import WEBHOOKS_QUEUE, channel_queues
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import Simulator, Worker, wait_until
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.pipeline]

SHORT = {"WEBHOOKS_RETRY_SCHEDULE": "0.5,0.5"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def register(api: APIClient, url: str, events: list[str]) -> dict[str, Any]:
    response = api.post("/api/v1/webhook-endpoints", {"url": url, "events": events}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_a_sent_email_reaches_the_receiver_as_a_signed_delivery_sent(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    receiver: Receiver,
) -> None:
    worker_factory(env=SHORT)
    endpoint = register(api, receiver.url, ["delivery.sent"])

    delivery_id = notify(api, channels=["email"])["deliveries"][0]["id"]
    wait_status(delivery_id, "sent")
    wait_until(lambda: receiver.received, timeout=20)

    (got,) = receiver.received
    event = got.verified(endpoint["secret"])
    assert event["type"] == "delivery.sent"
    assert event["data"]["delivery_id"] == delivery_id
    assert event["data"]["recipient"] == "user-1"
    assert event["data"]["contact"] == "u***@example.com"
    assert "A-1001" not in got.body.decode()  # no content without the opt-in
    assert got.headers["webhook-id"] == event["id"]
    wait_until(
        lambda: WebhookMessage.objects.filter(state=MessageStatus.DELIVERED).exists(), timeout=10
    )


def test_500_then_200_is_delivered_on_the_second_attempt_by_the_worker(
    worker_factory: Callable[..., Worker],
    api: APIClient,
    demo: dict[str, object],
    receiver: Receiver,
) -> None:
    worker_factory(env=SHORT, queues=[WEBHOOKS_QUEUE], name="webhooks")
    receiver.script(Reply(500), Reply(200))
    endpoint = register(api, receiver.url, ["delivery.sent"])

    ping = api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test").json()
    message = wait_until(
        lambda: WebhookMessage.objects.filter(
            event_id=ping["id"], state=MessageStatus.DELIVERED
        ).first(),
        timeout=20,
    )

    assert message.attempts == 2
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == ping["id"]
    assert second.verified(endpoint["secret"])["type"] == "ping"


def test_down_for_every_attempt_is_a_dead_letter_replayed_from_the_api(
    worker_factory: Callable[..., Worker],
    api: APIClient,
    demo: dict[str, object],
    receiver: Receiver,
) -> None:
    worker_factory(env=SHORT, queues=[WEBHOOKS_QUEUE], name="webhooks")
    receiver.script(Reply(503))
    endpoint = register(api, receiver.url, ["delivery.sent"])

    ping = api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test").json()
    wait_until(
        lambda: WebhookMessage.objects.filter(event_id=ping["id"], state="dead").exists(),
        timeout=20,
    )
    assert len(receiver.received) == 3  # 1 + the schedule's 2 retries
    dead = api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/messages?status=dead").json()
    assert [m["id"] for m in dead["results"]] == [ping["id"]]

    receiver.script(Reply(200))
    replay = api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/messages/{ping['id']}/replay")
    assert replay.status_code == 200, replay.content
    wait_until(
        lambda: WebhookMessage.objects.filter(event_id=ping["id"], state="delivered").exists(),
        timeout=20,
    )
    (got,) = receiver.received
    assert got.verified(endpoint["secret"])["id"] == ping["id"]


def test_a_receiver_that_holds_every_webhook_never_delays_a_send(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    receiver: Receiver,
) -> None:
    worker_factory(env=SHORT, queues=channel_queues("email"), name="email")
    worker_factory(env=SHORT, queues=[WEBHOOKS_QUEUE], name="webhooks", concurrency=2)
    held = threading.Event()
    receiver.script(Reply(200, gate=held))
    register(api, receiver.url, ["delivery.sent"])

    # Three sends, one after another, while the receiver answers no webhook at all (the gate
    # stays shut until they are done): a send that waited on its webhook would never be sent.
    # No clock is compared, so a slow machine only makes this slower.
    try:
        for _ in range(3):
            delivery_id = notify(api, channels=["email"])["deliveries"][0]["id"]
            wait_status(delivery_id, "sent", timeout=30)
        wait_until(lambda: receiver.received, timeout=20)  # a webhook is there, held
        assert not WebhookMessage.objects.filter(state="delivered").exists()
    finally:
        held.set()
    wait_until(lambda: WebhookMessage.objects.filter(state="delivered").count() == 3, timeout=60)
