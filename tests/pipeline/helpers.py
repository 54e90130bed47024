"""Shared steps of the pipeline tests: create a notification through the API, wait for a status."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.test import APIClient

from apps.deliveries.models import Delivery
from tests.support.processes import wait_until


def notify(api: APIClient, *, channels: list[str], **extra: Any) -> dict[str, Any]:
    body = {
        "recipient": "user-1",
        "template": "order_shipped",
        "variables": {"order_id": "A-1001"},
        "channels": channels,
        **extra,
    }
    response = api.post("/api/v1/notifications", body, format="json")
    assert response.status_code == 202, response.content
    return dict(response.json())


def wait_status(delivery_id: str, status: str, timeout: float = 30) -> Delivery:
    return wait_until(
        lambda: Delivery.objects.filter(id=delivery_id, status=status).first(), timeout=timeout
    )


def retry_delays(delivery: Delivery) -> list[float]:
    """The delays the retry policy chose, as written in the `retrying` timeline events."""
    found = []
    for event in delivery.events.filter(status="retrying"):
        match = re.search(r"next in ([\d.]+)s", event.detail)
        assert match, event.detail
        found.append(float(match.group(1)))
    return found
