"""Webhooks with the real worker: a bad signature changes nothing; a bounce suppresses the
address, and the next send to it is skipped (at creation, and when re-checked before sending)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery
from apps.recipients.models import Suppression
from notifier.queues import ALL_QUEUES
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import Simulator, Worker, wait_until
from tests.support.webhooks import SENDGRID_URL, SendGridSigner, sendgrid_event

pytestmark = [pytest.mark.pipeline]


@pytest.fixture
def signer(settings: Any) -> SendGridSigner:
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    return signer


def test_bad_signature_is_403_then_bounce_suppresses_and_next_send_is_skipped(
    worker: Worker,
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    signer: SendGridSigner,
) -> None:
    first_id = notify(api, channels=["email"])["deliveries"][0]["id"]
    wait_status(first_id, "sent")
    (received,) = sendgrid.requests()
    email = received["body"]["personalizations"][0]["to"][0]["email"]
    bounce = [sendgrid_event("bounce", first_id, email, reason="550 no such user")]
    payload = json.dumps(bounce)

    forged = SendGridSigner().headers(payload)
    response = Client().post(SENDGRID_URL, payload, content_type="application/json", **forged)

    assert response.status_code == 403
    assert Delivery.objects.get(id=first_id).status == "sent"
    assert Suppression.objects.count() == 0

    response = signer.post(Client(), bounce)

    assert response.status_code == 200
    assert Delivery.objects.get(id=first_id).status == "failed"
    assert Suppression.objects.filter(channel="email", address=email).exists()

    second = notify(api, channels=["email"])["deliveries"][0]
    assert second["status"] == "skipped"
    assert second["reason"] == "address suppressed"
    time.sleep(1.5)
    assert len(sendgrid.requests()) == 1  # nothing more went to the provider


def test_address_suppressed_while_queued_is_skipped_at_send(
    transactional_db: None,
    clean_redis: redis.Redis,
    worker_env: dict[str, str],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Queued while no worker runs; the bounce arrives before a worker picks it up.
    delivery_id = notify(api, channels=["email"])["deliveries"][0]["id"]
    recipient = demo["recipient"]
    Suppression.objects.create(
        client=recipient.client,  # type: ignore[attr-defined]
        channel="email",
        address=recipient.email,  # type: ignore[attr-defined]
        reason="bounce",
    )

    worker = Worker(queues=ALL_QUEUES, env=worker_env)
    try:
        delivery = wait_status(delivery_id, "skipped")
    finally:
        worker.stop()

    assert delivery.reason == "address suppressed"
    assert delivery.attempts == 0
    assert sendgrid.requests() == []


def test_twilio_status_callback_from_the_simulator_marks_delivered(
    transactional_db: None,
    clean_redis: redis.Redis,
    worker_env: dict[str, str],
    live_server: Any,
    api: APIClient,
    demo: dict[str, object],
    settings: Any,
) -> None:
    # The simulator calls the StatusCallback like Twilio: signed with the auth token, against
    # the public URL the worker sent; our webhook verifies it with the SDK's validator.
    callback = f"{live_server.url}/webhooks/twilio/status"
    settings.TWILIO_AUTH_TOKEN = worker_env["TWILIO_AUTH_TOKEN"]
    settings.TWILIO_STATUS_CALLBACK_URL = callback
    sim = Simulator(
        "twilio",
        env={
            "TWILIO_SIM_STATUS_CALLBACKS": "1",
            "TWILIO_AUTH_TOKEN": worker_env["TWILIO_AUTH_TOKEN"],
        },
    )
    env = {**worker_env, "TWILIO_API_URL": sim.url, "TWILIO_STATUS_CALLBACK_URL": callback}
    worker = Worker(queues=ALL_QUEUES, env=env)
    try:
        delivery_id = notify(api, channels=["sms"])["deliveries"][0]["id"]
        delivery = wait_status(delivery_id, "delivered")
    finally:
        worker.stop()
        sim.stop()

    assert [e.status for e in delivery.events.all()] == ["queued", "sent", "delivered"]
    assert delivery.events.last().detail == "twilio delivered"  # type: ignore[union-attr]


def test_delivered_report_that_overtakes_the_send_is_kept(
    worker: Worker,
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    signer: SendGridSigner,
) -> None:
    # SendGrid takes 2 s to answer our API call, and its "delivered" webhook beats the answer.
    sendgrid.fault(kind="latency", ms=2000, count=1)
    delivery_id = notify(api, channels=["email"])["deliveries"][0]["id"]
    wait_status(delivery_id, "sending")
    email = demo["recipient"].email  # type: ignore[attr-defined]

    response = signer.post(Client(), [sendgrid_event("delivered", delivery_id, email)])

    assert response.status_code == 200
    assert response.json()["applied"] == 1
    assert Delivery.objects.get(id=delivery_id).status == "delivered"
    # The worker's late "sent" does not undo it, nor does it retry or dead-letter.
    delivery = wait_until(
        lambda: Delivery.objects.filter(id=delivery_id, sent_at__isnull=False).first(), timeout=15
    )
    assert delivery.status == "delivered"
    assert delivery.sent_at is not None
    assert delivery.provider_message_id
    assert delivery.attempts == 1
    assert [(a.number, a.outcome) for a in delivery.attempt_rows.all()] == [(1, "sent")]
    timeline = [e.detail for e in delivery.events.order_by("at", "id")]
    assert timeline[-1].startswith("attempt 1 finished after")
    assert len(sendgrid.requests()) == 1
