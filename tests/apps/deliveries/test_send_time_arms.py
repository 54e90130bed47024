"""A send-time test's arms (`best_time` / `immediate` in Delivery.variant, set at creation) and
copy tests (labels, set at send) never overwrite one another, nor share a name."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from apps.deliveries.compose import delivery_message
from apps.deliveries.lifecycle import deliveries_sent
from apps.deliveries.models import Delivery, DeliveryStatus
from notifier.providers.base import SendResult
from tests.factories import DeliveryFactory, NotificationFactory, TemplateFactory
from tests.support.best_time import post

pytestmark = pytest.mark.django_db


def test_rendering_keeps_a_send_time_arm_and_clears_anything_else() -> None:
    # Given deliveries of a template with no copy test, one in a send-time arm, one with a
    # stale label
    arm = DeliveryFactory(channel="email", variant="best_time")
    stale = DeliveryFactory(channel="email", variant="B")

    delivery_message(delivery=arm)
    delivery_message(delivery=stale)

    assert (arm.variant, stale.variant) == ("best_time", "")


def test_a_batch_mixing_a_copy_test_and_a_send_time_arm_writes_each_its_own() -> None:
    # Given one batch: a delivery of a copy test (label B) and one of a send-time test
    copy = TemplateFactory(
        variants=[
            {"channel": "email", "label": "A", "subject": "A", "body": "a"},
            {"channel": "email", "label": "B", "subject": "B", "body": "b"},
        ]
    )
    tested = DeliveryFactory(
        notification=NotificationFactory(template=copy),
        channel="email",
        status=DeliveryStatus.SENDING,
        provider="sendgrid",
        variant="B",
    )
    timed = DeliveryFactory(
        channel="email", status=DeliveryStatus.SENDING, provider="sendgrid", variant="immediate"
    )
    for delivery in (tested, timed):
        delivery_message(delivery=delivery)

    # When the batch is marked sent (one UPDATE writes `variant` for every row)
    with transaction.atomic():
        deliveries_sent([(d, SendResult(f"sg-{d.pk}", 202)) for d in (tested, timed)])

    # Then each keeps its own
    assert dict(Delivery.objects.values_list("id", "variant")) == {
        tested.id: "B",
        timed.id: "immediate",
    }


def test_a_copy_label_may_not_take_an_arms_name(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.put(
        "/api/v1/templates/order_shipped",
        {
            "variants": [
                {"channel": "sms", "body": "a", "label": "A"},
                {"channel": "sms", "body": "b", "label": "immediate"},
            ]
        },
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {
        "variants": [
            "variant 1 (sms/en immediate) label 'immediate' is reserved (a send-time test's arm)."
        ]
    }
    assert demo["template"].versions.count() == 1


def test_a_holdout_beside_a_lone_labelled_variant_is_accepted(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a version whose only email variant carries a label: not a test (variant_weights)
    version = demo["template"].versions.get()
    version.variants.filter(channel="email").update(label="A")

    answer = post(api, recipient="user-1", send_at="best_time", best_time_holdout=50)

    assert answer["deliveries"][0]["variant"] in {"best_time", "immediate"}


def test_a_recipient_skipped_at_creation_is_in_no_arm(api: APIClient, demo: dict[str, Any]) -> None:
    # Given a recipient who opted out of email
    api.put("/api/v1/recipients/user-1/preferences", {"channels": {"email": False}}, format="json")

    answer = post(api, recipient="user-1", send_at="best_time", best_time_holdout=50)

    (delivery,) = answer["deliveries"]
    assert (delivery["status"], delivery["variant"]) == ("skipped", "")
