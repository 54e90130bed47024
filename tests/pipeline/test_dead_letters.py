"""Retries exhausted -> dead letter -> replay through the API -> sent, with the real worker."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter
from tests.factories import ApiKeyFactory
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import Simulator, Worker

pytestmark = [pytest.mark.pipeline]


def test_retries_exhausted_then_replay_is_sent(
    worker: Worker,
    twilio: Simulator,
    api: APIClient,
    demo: dict[str, object],
    settings: Any,
) -> None:
    settings.DELIVERY_MAX_ATTEMPTS = {**settings.DELIVERY_MAX_ATTEMPTS, "sms": 3}
    twilio.fault(kind="status", status=503)

    delivery_id = notify(api, channels=["sms"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "dead", timeout=40)

    assert delivery.attempts == 3
    letter = DeadLetter.objects.get(delivery_id=delivery_id)
    assert letter.reason == "twilio 503"
    assert letter.last_error.startswith("retries exhausted")
    assert letter.attempts == 3
    assert [r["status"] for r in twilio.requests()] == [503, 503, 503]

    twilio.clear_faults()
    _, raw = ApiKeyFactory.create_with_raw(is_ops=True, name="oncall")
    ops = APIClient()
    ops.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = ops.post(f"/api/v1/dead-letters/{letter.pk}/replay")
    assert response.status_code == 200, response.content

    delivery = wait_status(delivery_id, "sent")
    assert delivery.attempts == 1  # a fresh series
    letter.refresh_from_db()
    assert letter.replayed_by == "api:oncall"
    assert letter.replayed_at is not None
    received = twilio.requests()
    assert [r["status"] for r in received] == [503, 503, 503, 201]
    assert {r["key"] for r in received} == {delivery_id}
    timeline = [e.status for e in delivery.events.all()]
    assert timeline == ["queued", "retrying", "retrying", "dead", "queued", "sent"]
