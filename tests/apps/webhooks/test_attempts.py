"""One attempt at a webhook, against a real receiver on 127.0.0.1: signed per Standard Webhooks
(verified by its own library), retried on failure by the schedule (Retry-After honoured), dead
after the last attempt and replayable, the endpoint's breaker, the attempt log's 1 KiB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.webhooks.attempts import endpoint_breaker, message_attempt, retry_delay
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.services import endpoint_create, endpoint_ping, endpoint_rotate_secret
from notifier.breaker import OPEN
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.django_db]

M = MessageStatus


def endpoint_for(client: Any, url: str) -> WebhookEndpoint:
    return endpoint_create(
        client=client, url=url, events_=["delivery.sent"], description="", include_content=False
    )


def due_now(message: WebhookMessage) -> None:
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


def test_the_receiver_verifies_the_signature_with_the_standard_webhooks_library(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    endpoint = endpoint_for(demo["client"], receiver.url)
    message = endpoint_ping(endpoint=endpoint)

    assert message_attempt(message_id=message.pk) == "delivered"

    (got,) = receiver.received
    assert got.verified(endpoint.secret) == message.payload
    assert got.headers["webhook-id"] == message.event_id
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)
    message.refresh_from_db()
    assert (message.state, message.attempts) == (M.DELIVERED, 1)
    (attempt,) = WebhookAttempt.objects.filter(endpoint=endpoint)
    assert (attempt.ok, attempt.status_code, attempt.response_excerpt) == (True, 200, "ok")


def test_during_a_rotation_both_the_old_and_the_new_secret_verify(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    endpoint = endpoint_for(demo["client"], receiver.url)
    old = endpoint.secret
    new = endpoint_rotate_secret(endpoint=endpoint)
    message = endpoint_ping(endpoint=endpoint)

    message_attempt(message_id=message.pk)

    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified(old) == got.verified(new) == message.payload


def test_after_the_overlap_only_the_new_secret_signs(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    endpoint = endpoint_for(demo["client"], receiver.url)
    old = endpoint.secret
    new = endpoint_rotate_secret(endpoint=endpoint, now=timezone.now() - dt.timedelta(hours=25))
    message = endpoint_ping(endpoint=endpoint)

    message_attempt(message_id=message.pk)

    (got,) = receiver.received
    assert got.verified(new) == message.payload
    with pytest.raises(WebhookVerificationError):
        got.verified(old)


def test_500_then_200_is_delivered_on_the_second_attempt_with_the_same_id(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    receiver.script(Reply(500, body=b"boom"), Reply(200))
    endpoint = endpoint_for(demo["client"], receiver.url)
    message = endpoint_ping(endpoint=endpoint)
    before = timezone.now()

    assert message_attempt(message_id=message.pk) == "pending"
    message.refresh_from_db()
    # The schedule's first delay (5 s, +-20%), kept in the row.
    assert before + dt.timedelta(seconds=3.9) <= message.next_attempt_at
    assert message.next_attempt_at <= timezone.now() + dt.timedelta(seconds=6.1)
    assert message_attempt(message_id=message.pk) == "not_claimed"  # not due yet
    due_now(message)
    assert message_attempt(message_id=message.pk) == "delivered"

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.event_id
    message.refresh_from_db()
    assert (message.state, message.attempts) == (M.DELIVERED, 2)
    log = list(WebhookAttempt.objects.filter(message=message).order_by("number"))
    assert [(a.number, a.status_code, a.ok) for a in log] == [(1, 500, False), (2, 200, True)]
    assert log[0].response_excerpt == "boom"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


@pytest.mark.parametrize("header", ["120", "date"])
def test_retry_after_is_honoured(demo: dict[str, Any], receiver: Receiver, header: str) -> None:
    value = header
    if header == "date":
        from email.utils import format_datetime

        value = format_datetime(timezone.now() + dt.timedelta(seconds=120), usegmt=True)
    receiver.script(Reply(429, headers={"Retry-After": value}))
    endpoint = endpoint_for(demo["client"], receiver.url)
    message = endpoint_ping(endpoint=endpoint)
    before = timezone.now()

    message_attempt(message_id=message.pk)

    message.refresh_from_db()
    assert message.state == M.PENDING
    # 120 s, not the schedule's 5 s.
    assert message.next_attempt_at >= before + dt.timedelta(seconds=118)


def test_retry_after_is_capped_at_the_longest_delay(settings: Any) -> None:
    settings.WEBHOOKS_RETRY_SCHEDULE = [1.0, 2.0]

    assert retry_delay(1, retry_after=86400 * 30) == 2.0
    assert 0.8 <= retry_delay(1, retry_after=None) <= 1.2


def test_down_for_every_attempt_is_a_dead_letter_then_replayed_from_the_api(
    demo: dict[str, Any], api: APIClient, settings: Any
) -> None:
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.1, 0.1]
    down = Receiver()
    url = down.url
    down.stop()  # nothing listens there now
    endpoint = endpoint_for(demo["client"], url)
    message = endpoint_ping(endpoint=endpoint)

    outcomes = []
    for _ in range(3):
        due_now(message)
        outcomes.append(message_attempt(message_id=message.pk))

    assert outcomes == ["pending", "pending", "dead"]
    message.refresh_from_db()
    assert message.state == M.DEAD
    assert message.last_error.startswith("attempts exhausted; last: ConnectError")
    dead = api.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/messages?status=dead").json()
    assert [m["id"] for m in dead["results"]] == [message.event_id]
    # The receiver comes back (on a new port: the endpoint is pointed at it); the dead letter
    # is replayed.
    back = Receiver()
    try:
        endpoint.url = back.url
        endpoint.save()
        response = api.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/messages/{message.event_id}/replay"
        )
        assert response.status_code == 200, response.content
        assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
        assert message_attempt(message_id=message.pk) == "delivered"
        (got,) = back.received
        assert got.verified(endpoint.secret)["id"] == message.event_id
    finally:
        back.stop()
    message.refresh_from_db()
    assert (message.state, message.replayed_by) == (M.DELIVERED, f"api:{demo['client'].name}")
    again = api.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/messages/{message.event_id}/replay")
    assert again.status_code == 409


def test_the_endpoints_breaker_opens_and_holds_its_messages_unattempted(
    demo: dict[str, Any], receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOKS_BREAKER_FAILURES = 2
    receiver.script(Reply(503))
    endpoint = endpoint_for(demo["client"], receiver.url)
    messages = [endpoint_ping(endpoint=endpoint) for _ in range(3)]

    message_attempt(message_id=messages[0].pk)
    message_attempt(message_id=messages[1].pk)
    assert endpoint_breaker(str(endpoint.pk)).state() == OPEN
    assert message_attempt(message_id=messages[2].pk) == "pending"

    assert len(receiver.received) == 2  # the third was not sent
    held = WebhookMessage.objects.get(pk=messages[2].pk)
    assert held.attempts == 0  # a wait is not an attempt
    assert held.next_attempt_at > timezone.now() + dt.timedelta(seconds=30)
    assert not WebhookAttempt.objects.filter(message=held).exists()


def test_the_attempt_log_keeps_at_most_1_kib_of_the_answer(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    receiver.script(Reply(500, body="é".encode() * 5000 + b"\x00"))
    endpoint = endpoint_for(demo["client"], receiver.url)
    message = endpoint_ping(endpoint=endpoint)

    message_attempt(message_id=message.pk)

    attempt = WebhookAttempt.objects.get(message=message)
    assert len(attempt.response_excerpt.encode()) == 1024
    assert attempt.response_excerpt == "é" * 512
    assert attempt.duration_ms >= 0


def test_a_disabled_endpoints_message_becomes_a_dead_letter_unsent(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    endpoint = endpoint_for(demo["client"], receiver.url)
    message = endpoint_ping(endpoint=endpoint)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)

    assert message_attempt(message_id=message.pk) == "dead"

    assert receiver.received == []
    message.refresh_from_db()
    assert (message.state, message.last_error) == (M.DEAD, "endpoint disabled")
