"""The outbox: the lifecycle's status changes (and the cancel, and the recipient's unsubscribe)
write one message per event and subscribed endpoint in their own transaction, one INSERT per
batch; a client without endpoints costs one query per batch; payloads carry ids and statuses,
masked contact data unless the endpoint opted in; a client's endpoint never hears another's."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_lib
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.core import metrics
from apps.deliveries.lifecycle import deliveries_read, deliveries_sent, delivery_report
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.recipients.models import Recipient, RecipientEvent
from apps.recipients.services import preference_unsubscribe
from apps.webhooks import presence, redis_guard
from apps.webhooks.models import WebhookEndpoint, WebhookMessage
from apps.webhooks.services import endpoint_create
from notifier.providers.base import SendResult
from tests.factories import ApiClientFactory, DeliveryFactory, NotificationFactory, RecipientFactory

pytestmark = [pytest.mark.django_db]

ALL = [
    "delivery.sent",
    "delivery.delivered",
    "delivery.read",
    "delivery.skipped",
    "notification.cancelled",
    "recipient.unsubscribed",
]


def endpoint(client: Any, *, events: list[str] | None = None, content: bool = False) -> Any:
    return endpoint_create(
        client=client,
        url="https://hooks.example.com/x",
        events_=events or ALL,
        description="",
        include_content=content,
    )


def sending(client: Any, n: int, *, variables: dict[str, Any] | None = None) -> list[Delivery]:
    notification = NotificationFactory(client=client, variables=variables or {"order": "A-1"})
    first = Recipient.objects.filter(client=client).count()  # ids unique within the client
    return [
        DeliveryFactory(
            notification=notification,
            recipient=RecipientFactory(
                client=client, external_id=f"user-{first + i}", email=f"ada{first + i}@example.com"
            ),
            status=DeliveryStatus.SENDING,
            provider="sendgrid",
            attempts=1,
        )
        for i in range(n)
    ]


def sent(deliveries: list[Delivery]) -> None:
    with transaction.atomic():
        deliveries_sent([(d, SendResult(f"sg-{d.pk}", 202)) for d in deliveries])


def test_a_sent_batch_writes_one_message_per_delivery_in_one_insert() -> None:
    client = ApiClientFactory()
    hook = endpoint(client)
    batch = sending(client, 20)

    with CaptureQueriesContext(connection) as queries:
        sent(batch)

    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "webhooks_webhookmessage"')]
    assert len(inserts) == 1
    rows = list(WebhookMessage.objects.filter(endpoint=hook).order_by("id"))
    assert len(rows) == 20
    assert {r.type for r in rows} == {"delivery.sent"}
    assert len({r.event_id for r in rows}) == 20
    first = next(r for r in rows if r.payload["data"]["delivery_id"] == str(batch[0].pk))
    assert first.payload == {
        "id": first.event_id,
        "type": "delivery.sent",
        "created_at": first.payload["created_at"],
        "data": {
            "delivery_id": str(batch[0].pk),
            "notification_id": str(batch[0].notification_id),
            "recipient": "user-0",
            "channel": "email",
            "status": "sent",
            "reason": "",
            "provider": "sendgrid",
            "attempts": 1,
            "contact": "a***@example.com",
        },
    }


def test_with_no_endpoint_anywhere_a_batch_costs_no_query() -> None:
    client = ApiClientFactory()
    sent(sending(client, 3))  # the process reads who has endpoints (nobody) once
    batch = sending(client, 30)

    with CaptureQueriesContext(connection) as queries:
        sent(batch)

    assert [q for q in queries if "webhooks_" in q["sql"]] == []
    assert not WebhookMessage.objects.exists()


def test_a_client_without_endpoints_pays_one_query_per_batch_while_others_have_some() -> None:
    client = ApiClientFactory()
    endpoint(ApiClientFactory())  # another client's endpoint
    sent(sending(client, 3))
    batch = sending(client, 30)

    with CaptureQueriesContext(connection) as queries:
        sent(batch)

    assert len([q for q in queries if "webhooks_" in q["sql"]]) == 1
    assert not WebhookMessage.objects.exists()


def test_an_endpoint_created_after_the_process_cached_nobody_is_heard_at_once() -> None:
    client = ApiClientFactory()
    sent(sending(client, 1))  # cached: no endpoint anywhere
    hook = endpoint(client)

    sent(sending(client, 2))

    assert WebhookMessage.objects.filter(endpoint=hook).count() == 2


def test_messages_roll_back_with_the_status_change() -> None:
    client = ApiClientFactory()
    endpoint(client)
    batch = sending(client, 2)

    def sent_then_crash() -> None:
        with transaction.atomic():
            deliveries_sent([(d, SendResult("x", 202)) for d in batch])
            raise RuntimeError("the worker died before commit")

    with pytest.raises(RuntimeError):
        sent_then_crash()

    assert not WebhookMessage.objects.exists()
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENDING}


def test_include_content_adds_the_unmasked_address_and_the_variables() -> None:
    client = ApiClientFactory()
    hook = endpoint(client, content=True)
    plain = endpoint(client)
    batch = sending(client, 1, variables={"order": "A-1", "total": "9.50"})

    sent(batch)

    full = WebhookMessage.objects.get(endpoint=hook).payload["data"]
    assert full["contact"] == "ada0@example.com"
    assert full["variables"] == {"order": "A-1", "total": "9.50"}
    masked = WebhookMessage.objects.get(endpoint=plain).payload["data"]
    assert masked["contact"] == "a***@example.com"
    assert "variables" not in masked
    # One event: the same id at both endpoints.
    assert len(set(WebhookMessage.objects.values_list("event_id", flat=True))) == 1


def test_only_subscribed_types_and_enabled_endpoints_get_messages() -> None:
    client = ApiClientFactory()
    endpoint(client, events=["delivery.failed"])
    off = endpoint(client)
    WebhookEndpoint.objects.filter(pk=off.pk).update(enabled=False)

    sent(sending(client, 3))

    assert not WebhookMessage.objects.exists()


def test_a_clients_endpoint_never_hears_another_clients_events() -> None:
    a, b = ApiClientFactory(), ApiClientFactory()
    hook_a, hook_b = endpoint(a), endpoint(b)

    sent(sending(a, 2) + sending(b, 3))

    assert WebhookMessage.objects.filter(endpoint=hook_a).count() == 2
    assert WebhookMessage.objects.filter(endpoint=hook_b).count() == 3
    recipients_b = {
        m.payload["data"]["recipient"] for m in WebhookMessage.objects.filter(endpoint=hook_b)
    }
    assert recipients_b == {"user-0", "user-1", "user-2"}
    delivery_ids_a = {
        m.payload["data"]["delivery_id"] for m in WebhookMessage.objects.filter(endpoint=hook_a)
    }
    assert delivery_ids_a <= {
        str(pk)
        for pk in Delivery.objects.filter(notification__client=a).values_list("id", flat=True)
    }


def test_a_provider_report_and_a_read_are_announced() -> None:
    client = ApiClientFactory()
    hook = endpoint(client)
    (delivery,) = sending(client, 1)
    sent([delivery])

    delivery_report(delivery=delivery, status="delivered", detail="delivered by sendgrid")
    deliveries_read(delivery_ids=[delivery.pk])

    types = list(
        WebhookMessage.objects.filter(endpoint=hook).order_by("id").values_list("type", flat=True)
    )
    assert types == ["delivery.sent", "delivery.delivered", "delivery.read"]


def test_cancel_announces_the_notification_cancelled(api: APIClient, demo: dict[str, Any]) -> None:
    hook = endpoint(demo["client"])
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
            "send_at": "2099-01-01T00:00:00Z",
        },
        format="json",
    )
    notification_id = response.json()["id"]

    assert api.post(f"/api/v1/notifications/{notification_id}/cancel").status_code == 200

    (message,) = WebhookMessage.objects.filter(endpoint=hook)
    assert message.type == "notification.cancelled"
    assert message.payload["data"]["notification_id"] == notification_id
    assert len(message.payload["data"]["cancelled_deliveries"]) == 1


def test_a_delivery_skipped_at_creation_is_announced(api: APIClient, demo: dict[str, Any]) -> None:
    hook = endpoint(demo["client"])
    RecipientFactory(client=demo["client"], external_id="no-phone", phone="")

    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "no-phone",
            "template": "order_shipped",
            "variables": {"order_id": "A"},
            "channels": ["sms"],
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    (message,) = WebhookMessage.objects.filter(endpoint=hook)
    assert message.type == "delivery.skipped"
    assert message.payload["data"]["status"] == "skipped"
    assert message.payload["data"]["reason"] != ""


def test_an_unsubscribe_is_announced_in_its_transaction() -> None:
    client = ApiClientFactory()
    hook = endpoint(client)
    recipient = RecipientFactory(client=client, external_id="user-9")

    preference_unsubscribe(
        recipient=recipient, category="marketing", channel="email", source="link"
    )

    (message,) = WebhookMessage.objects.filter(endpoint=hook)
    assert message.type == "recipient.unsubscribed"
    assert message.payload["data"] == {
        "recipient": "user-9",
        "category": "marketing",
        "channel": "email",
        "source": "link",
    }


def test_messages_not_written_are_counted_as_dropped_and_the_send_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ApiClientFactory()
    endpoint(client)
    batch = sending(client, 3)
    counter = metrics.EVENTS_DROPPED.labels(receiver="webhooks.outbox")
    before = counter._value.get()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("canceling statement due to lock timeout")

    monkeypatch.setattr(WebhookMessage.objects, "bulk_create", broken)
    sent(batch)

    assert counter._value.get() == before + 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_with_redis_failing_the_presence_check_backs_off_to_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis that does not answer costs one wait, then BACKOFF_SECONDS of database checks."""
    client = ApiClientFactory()
    hook = endpoint(client)
    calls: list[float] = []
    clock = [1000.0]

    class BlackHole:
        def get(self, key: str) -> None:
            calls.append(clock[0])
            raise redis_lib.ConnectionError("Timeout connecting to server")

    monkeypatch.setattr(redis_guard, "service_client", lambda **_: BlackHole())
    monkeypatch.setattr(redis_guard.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(redis_guard, "_skipped_until", 0.0)

    assert presence.clients_with_endpoints() is None
    sent(sending(client, 2))  # asks the database: the endpoint hears it
    assert presence.clients_with_endpoints() is None
    assert len(calls) == 1  # Redis tried once in the back-off
    assert WebhookMessage.objects.filter(endpoint=hook).count() == 2
    clock[0] += redis_guard.BACKOFF_SECONDS + 0.1
    assert presence.clients_with_endpoints() is None
    assert len(calls) == 2  # tried again after it


def test_a_preferences_put_is_announced_and_in_the_timeline(
    api: APIClient, demo: dict[str, Any]
) -> None:
    hook = endpoint(demo["client"], events=["recipient.preferences_updated"])
    RecipientFactory(client=demo["client"], external_id="user-7")

    response = api.put(
        "/api/v1/recipients/user-7/preferences",
        {"categories": {"marketing": {"email": False}}},
        format="json",
    )

    assert response.status_code == 200, response.content
    (message,) = WebhookMessage.objects.filter(endpoint=hook)
    assert message.type == "recipient.preferences_updated"
    assert message.payload["data"] == {
        "recipient": "user-7",
        "category": "",
        "channel": "",
        "source": "api",
    }
    (event,) = RecipientEvent.objects.filter(recipient__external_id="user-7")
    assert (event.kind, event.source) == ("preferences_updated", "api")


def test_a_refused_preferences_put_announces_nothing(api: APIClient, demo: dict[str, Any]) -> None:
    hook = endpoint(demo["client"], events=["recipient.preferences_updated"])
    RecipientFactory(client=demo["client"], external_id="user-8")

    response = api.put(
        "/api/v1/recipients/user-8/preferences", {"daily_limit": "many"}, format="json"
    )

    assert response.status_code == 400
    assert not WebhookMessage.objects.filter(endpoint=hook).exists()
    assert not RecipientEvent.objects.filter(recipient__external_id="user-8").exists()
