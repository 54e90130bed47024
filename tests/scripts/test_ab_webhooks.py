"""scripts/ab_webhooks.py, the provider's part of `python -m scripts.ab_example`: its signature
passes the service's SendGrid verifier (and a changed body or another key does not), its events
reach the delivery through the real endpoint by `sg_message_id` alone, and the draw of opens and
clicks is exact per label, seeded and nested (every click an open)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.deliveries.models import DeliveryStatus
from apps.deliveries.webhooks import sendgrid_signature_valid
from scripts.ab_webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventSigner,
    Sent,
    engagement,
    payload,
    sendgrid_event,
)
from tests.factories import DeliveryFactory

SHARES = {"open_share": {"A": 0.2, "B": 0.3}, "click_share": {"A": 0.05, "B": 0.1}}


def _sent(n: int) -> list[Sent]:
    return [
        Sent(
            id=f"d-{i}",
            recipient=f"user-{i:03d}",
            email=f"user-{i:03d}@example.com",
            variant="AB"[i % 3 == 0],
            provider_message_id=f"m{i}",
        )
        for i in range(n)
    ]


def _verified(signer: EventSigner, body: bytes, headers: dict[str, str]) -> bool:
    return sendgrid_signature_valid(
        payload=body.decode(),
        signature=headers[SIGNATURE_HEADER],
        timestamp=headers[TIMESTAMP_HEADER],
    )


def test_the_signature_passes_the_services_verifier_and_a_changed_body_does_not(
    settings: Any,
) -> None:
    signer = EventSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    body = payload([sendgrid_event("open", _sent(1)[0], at=1_800_000_000)])

    headers = signer.headers(body, timestamp=1_800_000_000)

    assert headers[TIMESTAMP_HEADER] == "1800000000"
    assert _verified(signer, body, headers) is True
    assert _verified(signer, body.replace(b"open", b"click"), headers) is False
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = EventSigner().public_key
    assert _verified(signer, body, headers) is False


@pytest.mark.django_db
def test_an_event_finds_its_delivery_by_sg_message_id_through_the_endpoint(
    settings: Any,
) -> None:
    signer = EventSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    delivery = DeliveryFactory(
        channel="email", status=DeliveryStatus.SENT, provider_message_id="a0ed6a2e25d2"
    )
    sent = Sent(
        id="not-the-delivery-id",  # so only sg_message_id can match
        recipient=delivery.recipient.external_id,
        email=delivery.recipient.email,
        variant="",
        provider_message_id="a0ed6a2e25d2",
    )
    body = payload([sendgrid_event("delivered", sent, at=1_800_000_000)])

    response = Client().post(
        "/webhooks/sendgrid", body, content_type="application/json", headers=signer.headers(body)
    )

    assert response.status_code == 200
    assert response.json() == {"received": 1, "applied": 1}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_the_draw_is_exact_per_label_seeded_and_every_click_an_open() -> None:
    sent = _sent(300)  # 100 B, 200 A

    plan = engagement(sent, **SHARES, seed=17)

    again = engagement(list(reversed(sent)), **SHARES, seed=17)  # in another order
    assert (again["open"], again["click"]) == (plan["open"], plan["click"])
    assert plan["delivered"] == sent
    opened = [s.variant for s in plan["open"]]
    clicked = [s.variant for s in plan["click"]]
    assert (opened.count("A"), opened.count("B")) == (40, 30)
    assert (clicked.count("A"), clicked.count("B")) == (10, 10)
    assert set(plan["click"]) <= set(plan["open"])
    assert plan["open"] != engagement(sent, **SHARES, seed=18)["open"]


def test_more_clicks_than_opens_is_refused() -> None:
    with pytest.raises(ValueError, match="more clicks"):
        engagement(_sent(10), open_share={"A": 0.1}, click_share={"A": 0.5}, seed=1)
