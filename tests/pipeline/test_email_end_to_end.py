"""One notification all the way: API -> PostgreSQL -> Redis -> real Celery worker -> SendGrid SDK
-> local SendGrid simulator."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]


def test_email_reaches_simulator_once_with_rendered_content(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1001"},
            "channels": ["email"],
        },
        format="json",
    )
    assert response.status_code == 202
    delivery_id = response.json()["deliveries"][0]["id"]

    wait_until(
        lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENT).exists(),
        timeout=20,
    )

    received = sendgrid.requests()
    assert len(received) == 1
    mail = received[0]["body"]
    assert mail["personalizations"] == [{"to": [{"email": "user-1@example.com"}]}]
    assert mail["subject"] == "Order A-1001 shipped"
    assert mail["content"] == [
        {"type": "text/plain", "value": "Hi Ada, order A-1001 is on its way."},
        {"type": "text/html", "value": "<p>Hi Ada, order <b>A-1001</b> is on its way.</p>"},
    ]
    assert mail["custom_args"] == {"delivery_id": delivery_id}

    detail = api.get(f"/api/v1/notifications/{response.json()['id']}").json()
    (delivery,) = detail["deliveries"]
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert [e["status"] for e in delivery["timeline"]] == ["queued", "sent"]
    assert delivery["attempt_log"][0]["response_code"] == 202
