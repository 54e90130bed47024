"""The device admin: a device's client is its recipient's, and a token is unique per client."""

from __future__ import annotations

from django.test import Client

from apps.recipients.models import Device
from tests.factories import DeviceFactory, RecipientFactory

ADD = "/admin/recipients/device/add/"


def form(recipient_id: int, token: str) -> dict[str, str]:
    return {"recipient": str(recipient_id), "token": token, "platform": "android", "active": "on"}


def test_a_device_added_in_the_admin_takes_its_recipients_client(staff: Client) -> None:
    other_client_device = DeviceFactory(token="same-token")
    recipient = RecipientFactory()

    response = staff.post(ADD, form(recipient.pk, "same-token"))

    assert response.status_code == 302
    added = Device.objects.get(recipient=recipient)
    assert added.client_id == recipient.client_id
    assert Device.objects.filter(token="same-token").count() == 2
    assert other_client_device.client_id != recipient.client_id


def test_a_token_the_client_has_already_is_a_form_error(staff: Client) -> None:
    existing = DeviceFactory(token="taken-token")
    recipient = RecipientFactory(client=existing.client)

    response = staff.post(ADD, form(recipient.pk, "taken-token"))

    assert response.status_code == 200
    assert "This client already has a device with this token." in response.content.decode()
    assert Device.objects.filter(token="taken-token").count() == 1


def test_a_device_added_inline_with_a_new_recipient_takes_its_client(staff: Client) -> None:
    client = RecipientFactory().client

    response = staff.post(
        "/admin/recipients/recipient/add/",
        {
            "client": str(client.pk),
            "external_id": "new-user",
            "locale": "en",
            "timezone": "UTC",
            "data": "{}",
            "preference-TOTAL_FORMS": "0",
            "preference-INITIAL_FORMS": "0",
            "devices-TOTAL_FORMS": "1",
            "devices-INITIAL_FORMS": "0",
            "devices-0-token": "inline-token",
            "devices-0-platform": "ios",
            "devices-0-active": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    device = Device.objects.get(token="inline-token")
    assert (device.recipient.external_id, device.client_id) == ("new-user", client.pk)
