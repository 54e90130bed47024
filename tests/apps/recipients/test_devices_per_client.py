"""Devices belong to a client: a token registered by one client is invisible to every other,
and the longest token the API accepts (or address a provider reports) fits its index."""

from __future__ import annotations

import secrets
import string
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries.models import DeliveryStatus
from apps.recipients.models import Device, Suppression
from apps.recipients.services import device_deactivate
from apps.recipients.validation import DEVICE_TOKEN_MAX
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import ApiKeyFactory, DeliveryFactory, DeviceFactory, RecipientFactory
from tests.support.webhooks import SendGridSigner, sendgrid_event

DEVICES = "/api/v1/recipients/{}/devices"


def client_with_recipient(external_id: str) -> tuple[APIClient, Any]:
    key, raw = ApiKeyFactory.create_with_raw()
    recipient = RecipientFactory(client=key.client, external_id=external_id)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api, recipient


@pytest.mark.django_db
def test_another_client_cannot_take_over_a_device() -> None:
    alice_api, alice = client_with_recipient("alice")
    bob_api, bob = client_with_recipient("bob")
    body = {"token": "fcm-shared-token", "platform": "android"}
    assert alice_api.post(DEVICES.format("alice"), body, format="json").status_code == 201

    taken = bob_api.post(DEVICES.format("bob"), body, format="json")

    # Answered as for a token nobody holds: nothing says that another client has it.
    assert taken.status_code == 201
    assert Device.objects.get(recipient=alice).token == "fcm-shared-token"
    assert Device.objects.get(recipient=bob).token == "fcm-shared-token"
    # Alice still owns hers, and removes it; Bob's stays.
    removed = alice_api.delete(DEVICES.format("alice") + "/fcm-shared-token")
    assert removed.status_code == 204
    assert list(Device.objects.values_list("recipient__external_id", flat=True)) == ["bob"]


@pytest.mark.django_db
def test_reregistering_within_a_client_still_moves_the_token() -> None:
    api, first = client_with_recipient("first")
    second = RecipientFactory(client=first.client, external_id="second")
    body = {"token": "family-tablet", "platform": "android"}
    api.post(DEVICES.format("first"), body, format="json")

    moved = api.post(DEVICES.format("second"), body, format="json")

    assert moved.status_code == 200
    assert Device.objects.get(token="family-tablet").recipient == second


@pytest.mark.django_db
def test_a_dead_token_deactivates_only_the_reporting_clients_device() -> None:
    _, alice = client_with_recipient("alice")
    _, bob = client_with_recipient("bob")
    DeviceFactory(recipient=alice, token="dead-token")
    DeviceFactory(recipient=bob, token="dead-token")

    changed = device_deactivate(client_id=alice.client_id, token="dead-token", reason="gone")

    assert changed is True
    assert Device.objects.get(recipient=alice).active is False
    assert Device.objects.get(recipient=bob).active is True


@pytest.mark.django_db
def test_the_longest_accepted_token_registers() -> None:
    api, recipient = client_with_recipient("web-user")
    # Random, so PostgreSQL cannot compress it below the index row limit.
    alphabet = string.ascii_letters + string.digits + "-_:/.%"
    token = "".join(secrets.choice(alphabet) for _ in range(DEVICE_TOKEN_MAX))

    response = api.post(DEVICES.format("web-user"), {"token": token, "platform": "web"}, "json")

    assert response.status_code == 201
    assert Device.objects.get(recipient=recipient).token == token


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    [
        "x" * 4000,
        "".join(secrets.choice(string.ascii_letters) for _ in range(4000)),
        "é" * 1500,  # not a token's alphabet (and 3,000 bytes: over an index row)
        "has space",
        "line\nbreak",
    ],
)
def test_an_oversized_or_malformed_token_is_a_400(token: str) -> None:
    api, _ = client_with_recipient("user-1")

    response = api.post(DEVICES.format("user-1"), {"token": token, "platform": "web"}, "json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {"token"}
    assert Device.objects.count() == 0


@pytest.mark.django_db
def test_deleting_an_oversized_token_is_a_404() -> None:
    api, _ = client_with_recipient("user-1")

    response = api.delete(DEVICES.format("user-1") + "/" + "y" * 5000)

    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


@pytest.mark.django_db
def test_an_oversized_address_in_a_bounce_suppresses_nothing(settings: Any) -> None:
    """Suppression addresses are indexed too: a provider report naming a 5,000-character
    address (nothing we send to) is applied to the delivery and suppresses nothing."""
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    delivery = DeliveryFactory(channel="email", status=DeliveryStatus.SENT)
    address = "a" * 5000 + "@example.com"

    response = signer.post(Client(), [sendgrid_event("bounce", str(delivery.id), address)])

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert Suppression.objects.count() == 0
