"""Push fan-out to every active device, and dead tokens deactivating devices."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter
from apps.recipients.models import Device
from tests.factories import DeviceFactory
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import Simulator, Worker

pytestmark = [pytest.mark.pipeline]


def test_unregistered_token_deactivates_device_and_dead_letters_without_retry(
    worker: Worker, fcm: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    device = DeviceFactory(recipient=demo["recipient"], token="dead-token-1")
    fcm.fault(kind="invalid")

    delivery_id = notify(api, channels=["push"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "dead")

    device.refresh_from_db()
    assert device.active is False
    assert device.deactivated_reason == "fcm token unregistered"
    dead_letter = DeadLetter.objects.get(delivery_id=delivery_id)
    assert dead_letter.reason == "fcm token unregistered; no active device left"
    assert dead_letter.attempts == 1
    assert delivery.attempts == 1
    assert delivery.reason == dead_letter.reason
    time.sleep(2)  # longer than any retry delay of the test policy
    (received,) = fcm.requests()
    assert received["status"] == 404
    assert received["key"] == delivery_id
    assert received["body"]["message"]["token"] == "dead-token-1"


def test_push_goes_to_every_active_device_and_survives_one_dead_token(
    worker: Worker, fcm: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    recipient = demo["recipient"]
    DeviceFactory(recipient=recipient, token="good-android", platform="android")
    DeviceFactory(recipient=recipient, token="good-web", platform="web")
    DeviceFactory(recipient=recipient, token="stale-ios", platform="ios")
    DeviceFactory(recipient=recipient, token="inactive-one", active=False)
    fcm.fault(kind="invalid", match="stale-ios")

    delivery_id = notify(api, channels=["push"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "sent")

    tokens = sorted(r["body"]["message"]["token"] for r in fcm.requests())
    assert tokens == ["good-android", "good-web", "stale-ios"]
    assert len(fcm.accepted()) == 2
    assert delivery.attempts == 1
    assert len(delivery.provider_message_id.split(",")) == 2
    assert set(Device.objects.filter(active=True).values_list("token", flat=True)) == {
        "good-android",
        "good-web",
    }
    assert not DeadLetter.objects.filter(delivery_id=delivery_id).exists()


def test_partial_push_retries_only_the_devices_that_failed(
    worker: Worker, fcm: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    recipient = demo["recipient"]
    DeviceFactory(recipient=recipient, token="steady-android", platform="android")
    DeviceFactory(recipient=recipient, token="flaky-ios", platform="ios")
    fcm.fault(kind="status", status=503, count=1, match="flaky-ios")

    delivery_id = notify(api, channels=["push"])["deliveries"][0]["id"]
    delivery = wait_status(delivery_id, "sent")

    # The flaky device is retried and gets it; the steady one is not sent it again.
    tokens = sorted(r["body"]["message"]["token"] for r in fcm.requests())
    assert tokens == ["flaky-ios", "flaky-ios", "steady-android"]
    assert sorted(r["body"]["message"]["token"] for r in fcm.accepted()) == [
        "flaky-ios",
        "steady-android",
    ]
    assert delivery.attempts == 2
    assert [(a.number, a.outcome) for a in delivery.attempt_rows.order_by("number")] == [
        (1, "transient"),
        (2, "sent"),
    ]
    assert set(delivery.push_accepted) == {"steady-android", "flaky-ios"}
    assert len(delivery.provider_message_id.split(",")) == 2
