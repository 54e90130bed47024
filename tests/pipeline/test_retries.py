"""Transient provider failures retried by the real worker under the retry policy."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Attempt, Delivery
from tests.pipeline.helpers import notify, retry_delays, wait_status
from tests.support.processes import Simulator, Worker

pytestmark = [pytest.mark.pipeline]

RETRY_BASE_SECONDS = 0.5  # worker_env


def test_503_then_success_is_sent_after_exactly_two_attempts(
    worker: Worker, twilio: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    twilio.fault(kind="status", status=503, count=1)

    delivery_id = notify(api, channels=["sms"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "sent")

    assert delivery.attempts == 2
    assert list(delivery.attempt_rows.values_list("outcome", "response_code")) == [
        (Attempt.Outcome.TRANSIENT, 503),
        (Attempt.Outcome.SENT, 201),
    ]
    (delay,) = retry_delays(delivery)
    # Full jitter after attempt 1: uniform in [0, base * 2**0].
    assert 0 <= delay <= RETRY_BASE_SECONDS
    first, second = twilio.requests()
    assert [first["status"], second["status"]] == [503, 201]
    assert first["key"] == second["key"] == delivery_id
    gap = second["at"] - first["at"]
    assert gap >= delay - 0.05  # never before the chosen delay
    assert gap < delay + 10  # and not parked somewhere else (generous: 2 shared cores)
    assert [e.status for e in delivery.events.all()] == ["queued", "retrying", "sent"]


def test_429_retry_after_is_honoured(
    worker: Worker, twilio: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    twilio.fault(kind="status", status=429, retry_after=2, count=1)

    delivery_id = notify(api, channels=["sms"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "sent")

    first, second = twilio.requests()
    assert [first["status"], second["status"]] == [429, 201]
    assert second["at"] - first["at"] >= 2.0
    (delay,) = retry_delays(delivery)
    assert delay >= 2.0
    assert delivery.attempts == 2


def test_429_retry_after_is_honoured_for_push(
    worker: Worker, fcm: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    from tests.factories import DeviceFactory

    DeviceFactory(recipient=demo["recipient"], token="push-token-1")
    fcm.fault(kind="status", status=429, retry_after=2, count=1)

    delivery_id = notify(api, channels=["push"])["deliveries"][0]["id"]
    wait_status(delivery_id, "sent")

    first, second = fcm.requests()
    assert [first["status"], second["status"]] == [429, 200]
    assert second["at"] - first["at"] >= 2.0
    assert Delivery.objects.get(id=delivery_id).attempts == 2
