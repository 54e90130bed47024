"""Timeline rows that can never add to the analytics rollup are inserted already counted, out
of the aggregator's queue (apps/deliveries/counting.py, `event_counts`): a row that is not its
delivery's creation and whose status is no counter, or a row written only to record. A
creation row always waits, whatever its status."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.lifecycle import deliveries_cancel, deliveries_release
from apps.deliveries.lifecycle.moves import deliveries_replay
from apps.deliveries.lifecycle.table import RETRY, events_add, move
from apps.deliveries.models import Delivery, DeliveryEvent
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def _rows(d: Delivery) -> list[tuple[str, bool]]:
    return list(
        DeliveryEvent.objects.filter(delivery=d).order_by("id").values_list("status", "counted")
    )


def test_creation_rows_wait_whatever_their_status(api: APIClient, demo: dict[str, object]) -> None:
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    body = {
        "recipient": "user-1",
        "template": "order_shipped",
        "channels": ["email"],
        "variables": {"order_id": "A-1"},
    }
    for extra in ({}, {"send_at": later}):  # queued, scheduled
        response = api.post("/api/v1/notifications", {**body, **extra}, format="json")
        assert response.status_code == 202, response.content
    created = dict(DeliveryEvent.objects.values_list("status", "counted"))
    assert created == {"queued": False, "scheduled": False}

    retrying = DeliveryFactory(status="retrying")
    events_add([retrying], None, "accepted", creation=True)
    assert _rows(retrying) == [("retrying", False)]


def test_a_release_a_replay_and_a_retry_are_inserted_counted_the_counters_wait() -> None:
    scheduled = DeliveryFactory(status="scheduled")
    dead = DeliveryFactory(status="dead")
    queued = DeliveryFactory(status="queued")
    sending = DeliveryFactory(status="sending")

    deliveries_release([scheduled], now=timezone.now())
    deliveries_replay([dead], detail=lambda d: "replayed by ops")
    deliveries_cancel([queued], reason="cancelled by the client")
    assert move(RETRY, [sending.id]) == {sending.id}
    events_add([sending], RETRY.target, "sendgrid 503")
    events_add([sending], "dead", "retries exhausted")

    assert _rows(scheduled) == [("queued", True)]
    assert _rows(dead) == [("queued", True)]
    assert _rows(queued) == [("cancelled", False)]
    assert _rows(sending) == [("retrying", True), ("dead", False)]


def test_a_row_written_only_to_record_is_inserted_counted() -> None:
    d = DeliveryFactory(status="delivered", provider="twilio")
    events_add([d], "delivered", "delivered by twilio")  # the report: waits
    events_add([d], None, "attempt 1 finished after twilio reported delivered", announce=False)

    assert _rows(d) == [("delivered", False), ("delivered", True)]
