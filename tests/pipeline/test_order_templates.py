"""Templates with loops and render limits through the real pipeline: API -> PostgreSQL -> Redis
-> Celery worker -> provider SDK -> simulator."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.deliveries.models import Attempt, DeadLetter, Delivery, DeliveryStatus, Notification
from apps.recipients.models import Recipient
from tests.pipeline.helpers import wait_status
from tests.support.processes import Simulator, Worker

pytestmark = [pytest.mark.pipeline]

ITEMS = [
    {"name": "Green tea", "qty": 2, "price": "8.00"},
    {"name": "Teapot", "qty": 1, "price": "25.00"},
    {"name": "Cups", "qty": 4, "price": "12.00"},
]


@pytest.fixture
def seeded(transactional_db: None) -> dict[str, Any]:
    """What `make run` seeds, with an API client for the demo key."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    demo = dict(json.loads(out.getvalue().strip().splitlines()[-1]))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {demo['api_key']}")
    demo["api"] = client
    return demo


def test_order_email_with_three_line_items_reaches_sendgrid_rendered(
    worker: Worker, sendgrid: Simulator, seeded: dict[str, Any]
) -> None:
    response = seeded["api"].post(
        "/api/v1/notifications",
        {
            "recipient": "demo-user",
            "template": seeded["order_template"],
            "variables": {"order_id": "A-1001", "items": ITEMS, "total": "45.00"},
            "channels": ["email"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    delivery_id = response.json()["deliveries"][0]["id"]

    wait_status(delivery_id, DeliveryStatus.SENT, timeout=30)

    (request,) = sendgrid.requests()
    mail = request["body"]
    assert mail["subject"] == "Order A-1001 confirmed"
    text, html = mail["content"]
    assert text == {
        "type": "text/plain",
        "value": "Hi Ada, thank you for order A-1001:\n"
        "2 x Green tea  8.00\n"
        "1 x Teapot  25.00\n"
        "4 x Cups  12.00\n"
        "Total 45.00",
    }
    assert html["value"] == (
        "<p>Hi Ada, thank you for order <b>A-1001</b>:</p><table>"
        "<tr><td>2</td><td>Green tea</td><td>8.00</td></tr>"
        "<tr><td>1</td><td>Teapot</td><td>25.00</td></tr>"
        "<tr><td>4</td><td>Cups</td><td>12.00</td></tr>"
        "</table><p>Total <b>45.00</b></p>"
    )


def test_order_without_items_is_400_naming_items_and_nothing_is_sent(
    worker: Worker, sendgrid: Simulator, seeded: dict[str, Any]
) -> None:
    response = seeded["api"].post(
        "/api/v1/notifications",
        {
            "recipient": "demo-user",
            "template": seeded["order_template"],
            "variables": {"order_id": "A-1001", "total": "45.00"},
            "channels": ["email"],
        },
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["message"] == "Missing template variables: items."
    assert body["fields"] == {"variables": ["missing variable 'items'"]}
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert sendgrid.requests() == []


def test_a_render_over_the_workers_limit_is_a_permanent_failure_not_retried(
    worker_factory: Callable[..., Worker], twilio: Simulator, api: APIClient, demo: dict[str, Any]
) -> None:
    # The web accepted it under its limits; the worker runs with smaller ones (a changed
    # setting, or data that grew): the same render would fail on every retry.
    api.put(
        "/api/v1/templates/long_sms",
        {"variants": [{"channel": "sms", "body": "{{ text }}"}]},
        format="json",
    )
    worker_factory(env={"RENDER_MAX_TEXT_BYTES": "64"})
    response = api.post(
        "/api/v1/notifications",
        {"recipient": "user-1", "template": "long_sms", "variables": {"text": "x" * 100}},
        format="json",
    )
    assert response.status_code == 202, response.content
    delivery_id = response.json()["deliveries"][0]["id"]

    delivery = wait_status(delivery_id, DeliveryStatus.DEAD, timeout=30)

    assert delivery.attempts == 1
    assert delivery.reason == "template exceeds the render limits"
    dead = DeadLetter.objects.get(delivery=delivery)
    assert dead.last_error == ("permanent failure: the rendered message would exceed 64 bytes")
    assert list(Attempt.objects.filter(delivery=delivery).values_list("outcome", flat=True)) == [
        Attempt.Outcome.PERMANENT
    ]
    assert twilio.requests() == []


def test_a_line_break_from_recipient_data_never_reaches_sendgrid_raw(
    worker_factory: Callable[..., Worker], sendgrid: Simulator, api: APIClient, demo: dict[str, Any]
) -> None:
    api.put(
        "/api/v1/templates/hello",
        {"variants": [{"channel": "email", "subject": "Hi {{ recipient.name }}", "body": "b"}]},
        format="json",
    )
    response = api.post(
        "/api/v1/notifications",
        {"recipient": "user-1", "template": "hello", "channels": ["email"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    # The recipient changes between the request and the send.
    Recipient.objects.filter(external_id="user-1").update(name="Ada\r\nBcc: eve@example.com")
    worker_factory()

    wait_status(response.json()["deliveries"][0]["id"], DeliveryStatus.SENT, timeout=30)

    (request,) = sendgrid.requests()
    assert request["body"]["subject"] == "Hi Ada Bcc: eve@example.com"
