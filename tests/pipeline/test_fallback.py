"""Fallback with the real worker: a permanently failed SMS falls back to email, once."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import DeadLetter, Delivery
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]


def test_sms_invalid_number_falls_back_to_email(
    worker: Worker,
    twilio: Simulator,
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    twilio.fault(kind="invalid")

    created = notify(api, channels=["sms"], fallback=["email"])
    (sms,) = created["deliveries"]
    wait_status(sms["id"], "dead")
    email = wait_until(
        lambda: Delivery.objects.filter(notification_id=created["id"], channel="email").first()
    )
    email = wait_status(str(email.id), "sent")

    assert email.is_fallback is True
    assert DeadLetter.objects.get(delivery_id=sms["id"]).reason == "twilio invalid number (21211)"
    (mail,) = sendgrid.requests()
    assert mail["key"] == str(email.id)
    time.sleep(1)
    assert Delivery.objects.filter(notification_id=created["id"]).count() == 2
    assert len(twilio.requests()) == 1  # permanent: no retry
