"""The POST's count of accepted deliveries (notifier_notifications_received) goes up by the
deliveries of each request, per channel and priority, on the first request and every later one
(the labelled counters are kept after the first)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

URL = "/api/v1/notifications"


def _received(channel: str, priority: str) -> float:
    value = REGISTRY.get_sample_value(
        "notifier_notifications_received_total", {"channel": channel, "priority": priority}
    )
    return value or 0.0


@pytest.mark.django_db
def test_each_post_counts_its_deliveries_by_channel_and_priority(
    api: APIClient, demo: dict[str, Any]
) -> None:
    before = {(c, p): _received(c, p) for c in ("email", "sms") for p in ("normal", "high", "low")}
    for priority in ("high", "high", "low"):
        body = {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email", "sms"],
            "priority": priority,
        }
        assert api.post(URL, body, format="json").status_code == 202

    gained = {key: _received(*key) - value for key, value in before.items()}
    assert gained == {
        ("email", "high"): 2,
        ("sms", "high"): 2,
        ("email", "low"): 1,
        ("sms", "low"): 1,
        ("email", "normal"): 0,
        ("sms", "normal"): 0,
    }
