"""Fallback rules: when every requested channel failed permanently, the fallback channels are
created once; opt-outs and deliveries still in flight do not trigger it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from apps.deliveries.lifecycle import fallback_after_failure
from apps.deliveries.models import Delivery, DeliveryStatus
from tests.factories import DeliveryFactory, NotificationFactory, PreferenceFactory

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/notifications"


def post(api: APIClient, **body: Any) -> dict[str, Any]:
    response = api.post(
        URL,
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A"},
            **body,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return dict(response.json())


def test_no_contact_data_on_every_channel_falls_back_at_creation(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    recipient = demo["recipient"]
    recipient.phone = ""
    recipient.save()

    with django_capture_on_commit_callbacks() as callbacks:
        body = post(api, channels=["sms", "push"], fallback=["email"])

    statuses = [(d["channel"], d["status"]) for d in body["deliveries"]]
    assert statuses == [("sms", "skipped"), ("push", "skipped"), ("email", "queued")]
    email = Delivery.objects.get(channel="email")
    assert email.is_fallback is True
    assert len(callbacks) == 1  # only the fallback is published


def test_opt_out_does_not_fall_back(api: APIClient, demo: dict[str, Any]) -> None:
    PreferenceFactory(recipient=demo["recipient"], channels={"sms": False})

    body = post(api, channels=["sms"], fallback=["email"])

    assert [(d["channel"], d["reason"]) for d in body["deliveries"]] == [
        ("sms", "opted out of sms")
    ]
    assert not Delivery.objects.filter(channel="email").exists()


def test_falls_back_only_when_the_last_requested_channel_fails_and_only_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    notification = NotificationFactory(channels=["email", "sms"], fallback=["push", "inapp"])
    email = DeliveryFactory(notification=notification, channel="email", status="dead")
    sms = DeliveryFactory(
        notification=notification, recipient=email.recipient, channel="sms", status="retrying"
    )

    with transaction.atomic():
        assert fallback_after_failure(delivery=email) == []

    sms.status = DeliveryStatus.DEAD
    sms.save()
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        created = fallback_after_failure(delivery=sms)

    # push has no active device: skipped (and, being a fallback, it does not fall back again)
    assert sorted((d.channel, d.status, d.is_fallback) for d in created) == [
        ("inapp", "queued", True),
        ("push", "skipped", True),
    ]
    assert len(callbacks) == 1
    with transaction.atomic():
        assert fallback_after_failure(delivery=sms) == []
        assert fallback_after_failure(delivery=email) == []
    assert Delivery.objects.filter(notification=notification).count() == 4


def test_sent_sibling_means_no_fallback() -> None:
    notification = NotificationFactory(channels=["email", "sms"], fallback=["inapp"])
    email = DeliveryFactory(notification=notification, channel="email", status="dead")
    DeliveryFactory(
        notification=notification, recipient=email.recipient, channel="sms", status="sent"
    )

    with transaction.atomic():
        assert fallback_after_failure(delivery=email) == []


def test_fallback_channel_already_requested_is_not_duplicated() -> None:
    notification = NotificationFactory(channels=["email"], fallback=["email", "inapp"])
    email = DeliveryFactory(notification=notification, channel="email", status="failed")

    with transaction.atomic():
        created = fallback_after_failure(delivery=email)

    assert [d.channel for d in created] == ["inapp"]
