"""Which notifications a digest takes, and whose `items` and `count` a render sees: only a
template or request declaring a digest is batched (a recipient's cadence alone never is), and
`items`/`count` are the digest's for digest templates, the template's own for any other."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.compose import delivery_message, delivery_variables
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, Notification
from apps.ops.management.commands.seed_demo import ORDER_VARIANTS
from tests.factories import (
    PreferenceFactory,
    TemplateFactory,
    comment_template,
)

URL = "/api/v1/notifications"
ORDER = {
    "order_id": "A-1",
    "total": "12.00",
    "items": [{"name": "Tea", "qty": 2, "price": "4.00"}, {"name": "Mug", "qty": 1, "price": "4"}],
}


@pytest.mark.django_db
def test_a_cadence_does_not_batch_a_template_declaring_no_digest_which_keeps_its_items(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given an order confirmation with its own line items, and a recipient with an hourly
    # cadence for its category
    TemplateFactory(
        client=demo["client"], key="order_confirmation", category="orders", variants=ORDER_VARIANTS
    )
    PreferenceFactory(recipient=demo["recipient"], digest={"orders": "hourly"})

    # When an order is confirmed
    response = api.post(
        URL,
        {"recipient": "user-1", "template": "order_confirmation", "variables": ORDER},
        format="json",
    )

    # Then it is sent on its own (not digested) and renders its own items
    assert response.status_code == 202, response.content
    assert {d["status"] for d in response.json()["deliveries"]} == {"queued"}
    assert Digest.objects.count() == 0
    email = Delivery.objects.get(channel="email")
    body = delivery_message(delivery=email).body
    assert "2 x Tea  4.00\n1 x Mug  4\nTotal 12.00" in body
    inapp = Delivery.objects.get(channel="inapp")
    assert delivery_message(delivery=inapp).body == "2 items, total 12.00"


@pytest.mark.django_db
@pytest.mark.parametrize("given", [{"items": []}, {"count": 3}, {"items": [], "count": 0}])
def test_a_request_to_a_digest_template_may_not_give_items_or_count(
    api: APIClient, demo: dict[str, Any], given: dict[str, Any]
) -> None:
    comment_template(demo["client"], digest={"window": "1m"})
    variables = {"post_id": "p1", "post_title": "P", "author": "a", "text": "t", **given}

    response = api.post(
        URL,
        {"recipient": "user-1", "template": "new_comment", "variables": variables},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "variables": [f"{name!r} is set by the digest" for name in sorted(given)]
    }
    assert Notification.objects.count() == 0
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_a_digest_template_sent_on_its_own_renders_as_a_digest_of_one(
    api: APIClient, demo: dict[str, Any]
) -> None:
    comment_template(demo["client"], digest={"window": "1m"})
    variables = {"post_id": "p1", "post_title": "Hello", "author": "ann", "text": "hi"}

    response = api.post(
        URL,
        {
            "recipient": "user-1",
            "template": "new_comment",
            "variables": variables,
            "channels": ["inapp"],
            "digest": False,
        },
        format="json",
    )

    assert response.status_code == 202, response.content
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.QUEUED
    message = delivery_message(delivery=delivery)
    assert (message.title, message.body) == ("1 new comment", "ann on Hello")


@pytest.mark.django_db
def test_a_template_declaring_no_digest_renders_its_own_variables_untouched(
    api: APIClient, demo: dict[str, Any]
) -> None:
    TemplateFactory(
        client=demo["client"], key="order_confirmation", category="orders", variants=ORDER_VARIANTS
    )
    api.post(
        URL,
        {"recipient": "user-1", "template": "order_confirmation", "variables": ORDER},
        format="json",
    )

    assert delivery_variables(Delivery.objects.get(channel="email")) == ORDER
