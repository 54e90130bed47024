from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.deliveries.models import DeliveryStatus, Notification
from apps.inbox.models import InboxMessage
from apps.recipients.models import Device, Preference, Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import (
    ApiKeyFactory,
    AttemptFactory,
    DeliveryFactory,
    DeviceFactory,
    InboxMessageFactory,
    NotificationFactory,
    PreferenceFactory,
    RecipientFactory,
)

URL = "/api/v1/recipients/{}"
PROFILE = {
    "email": "ada@example.com",
    "phone": "+14155552671",
    "locale": "pt-BR",
    "timezone": "Europe/Lisbon",
    "name": "Ada",
    "data": {"plan": "pro"},
}


def assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


def client_of(api_key: tuple[ApiKey, str]) -> Any:
    return api_key[0].client


@pytest.mark.django_db
def test_put_creates_then_updates(api: APIClient, api_key: tuple[ApiKey, str]) -> None:
    created = api.put(URL.format("user-42"), PROFILE, format="json")

    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in PROFILE} == PROFILE
    assert body["external_id"] == "user-42"

    updated = api.put(
        URL.format("user-42"), {"name": "Ada L.", "phone": "+351 912 345 678"}, format="json"
    )

    assert updated.status_code == 200
    assert updated.json()["name"] == "Ada L."
    assert updated.json()["phone"] == "+351912345678"
    assert updated.json()["email"] == "ada@example.com"
    row = Recipient.objects.get(client=client_of(api_key), external_id="user-42")
    assert (row.name, row.phone, row.timezone) == ("Ada L.", "+351912345678", "Europe/Lisbon")
    assert Recipient.objects.count() == 1


@pytest.mark.django_db
def test_get_returns_recipient(api: APIClient, api_key: tuple[ApiKey, str]) -> None:
    RecipientFactory(client=client_of(api_key), external_id="user-7", name="Grace")

    response = api.get(URL.format("user-7"))

    assert response.status_code == 200
    assert response.json()["name"] == "Grace"


@pytest.mark.django_db
def test_unknown_recipient_is_404(api: APIClient) -> None:
    for response in (
        api.get(URL.format("nobody")),
        api.delete(URL.format("nobody")),
        api.get(URL.format("nobody") + "/preferences"),
        api.put(URL.format("nobody") + "/preferences", {"daily_limit": 3}, format="json"),
        api.post(
            URL.format("nobody") + "/devices", {"token": "t", "platform": "ios"}, format="json"
        ),
        api.delete(URL.format("nobody") + "/devices/t"),
        api.post(URL.format("nobody") + "/token"),
    ):
        assert response.status_code == 404
        assert_error_shape(response.json(), "not_found")


@pytest.mark.django_db
def test_another_clients_recipient_is_404(api: APIClient) -> None:
    other = RecipientFactory(external_id="user-9")

    responses = [
        api.get(URL.format("user-9")),
        api.delete(URL.format("user-9")),
        api.get(URL.format("user-9") + "/preferences"),
        api.post(
            URL.format("user-9") + "/devices", {"token": "t", "platform": "ios"}, format="json"
        ),
        api.post(URL.format("user-9") + "/token"),
    ]

    for response in responses:
        assert response.status_code == 404
        assert_error_shape(response.json(), "not_found")
    other.refresh_from_db()
    assert other.erased_at is None
    assert other.devices.count() == 0


@pytest.mark.django_db
def test_put_for_existing_external_id_of_another_client_creates_own(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    other = RecipientFactory(external_id="user-9", name="Other")

    response = api.put(URL.format("user-9"), {"name": "Mine"}, format="json")

    assert response.status_code == 201
    other.refresh_from_db()
    assert other.name == "Other"
    assert Recipient.objects.get(client=client_of(api_key), external_id="user-9").name == "Mine"


@pytest.mark.django_db
def test_ops_key_sees_every_clients_recipient() -> None:
    RecipientFactory(external_id="user-9", name="Other")
    _, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    ops = APIClient()
    ops.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = ops.get(URL.format("user-9"))

    assert response.status_code == 200
    assert response.json()["name"] == "Other"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "+15551234567"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone": 14155552671}, "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"locale": "english please"}, "locale"),
        ({"locale": ""}, "locale"),
        ({"email": "not-an-email"}, "email"),
        ({"email": 42}, "email"),
        ({"name": ["Ada"]}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"data": "not an object"}, "data"),
        ({"data": {"k": "nul\u0000"}}, "data"),
    ],
)
def test_put_rejects_bad_fields(api: APIClient, body: dict[str, Any], field: str) -> None:
    response = api.put(URL.format("user-1"), body, format="json")

    assert response.status_code == 400
    result = response.json()
    assert_error_shape(result, "invalid")
    assert set(result["fields"]) == {field}
    assert Recipient.objects.count() == 0


@pytest.mark.django_db
def test_put_rejects_too_long_external_id(api: APIClient) -> None:
    response = api.put(URL.format("u" * 201), PROFILE, format="json")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"external_id"}
    assert Recipient.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ['{"name": "Ada"', "[1, 2]", '"just a string"', "null"])
def test_put_rejects_malformed_or_non_object_json(api: APIClient, raw: str) -> None:
    response = api.put(URL.format("user-1"), raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "invalid"}
    assert_error_shape(response.json(), response.json()["code"])
    assert Recipient.objects.count() == 0


@pytest.mark.django_db
def test_no_key_is_401(demo: dict[str, Any]) -> None:
    response = APIClient().get(URL.format("user-1"))

    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


@pytest.mark.django_db
def test_recipient_token_on_service_only_endpoints_is_403(demo: dict[str, Any]) -> None:
    recipient: Recipient = demo["recipient"]
    token = recipient_token_mint(recipient=recipient).token
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")

    responses = [
        app.get(URL.format("user-1")),
        app.put(URL.format("user-1"), {"name": "Eve"}, format="json"),
        app.delete(URL.format("user-1")),
        app.post(URL.format("user-1") + "/token"),
    ]

    for response in responses:
        assert response.status_code == 403
        assert_error_shape(response.json(), "permission_denied")
    recipient.refresh_from_db()
    assert recipient.name == "Ada"
    assert recipient.erased_at is None


@pytest.mark.django_db
def test_delete_erases_personal_data_and_anonymises_history(
    api: APIClient, demo: dict[str, Any]
) -> None:
    recipient: Recipient = demo["recipient"]
    DeviceFactory(recipient=recipient)
    PreferenceFactory(recipient=recipient, channels={"sms": False})
    InboxMessageFactory(recipient=recipient)
    sent = DeliveryFactory(
        notification=NotificationFactory(
            client=demo["client"],
            template=demo["template"],
            variables={"order_id": "A-1", "address": "1 Main St"},
            response={"deliveries": [{"recipient": "user-1", "channel": "email"}]},
        ),
        recipient=recipient,
        status=DeliveryStatus.SENT,
    )
    AttemptFactory(delivery=sent, error="550 ada@example.com does not exist")
    queued = DeliveryFactory(
        notification=NotificationFactory(client=demo["client"], template=demo["template"]),
        recipient=recipient,
        status=DeliveryStatus.QUEUED,
    )
    bystander = RecipientFactory(client=demo["client"], external_id="user-2")
    DeviceFactory(recipient=bystander)

    response = api.delete(URL.format("user-1"))

    assert response.status_code == 204
    recipient.refresh_from_db()
    assert recipient.erased_at is not None
    assert recipient.external_id.startswith("erased-")
    assert (recipient.email, recipient.phone, recipient.name, recipient.data) == ("", "", "", {})
    assert Device.objects.filter(recipient=recipient).count() == 0
    assert Preference.objects.filter(recipient=recipient).count() == 0
    assert InboxMessage.objects.filter(recipient=recipient).count() == 0
    notification = Notification.objects.get(pk=sent.notification_id)
    assert notification.variables == {}
    assert notification.response["deliveries"][0]["recipient"] == recipient.external_id
    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.SENT
    assert sent.attempt_rows.get().error == ""
    queued.refresh_from_db()
    assert (queued.status, queued.reason) == (DeliveryStatus.CANCELLED, "recipient erased")
    assert Device.objects.filter(recipient=bystander).count() == 1
    assert api.get(URL.format("user-1")).status_code == 404
    assert api.delete(URL.format("user-1")).status_code == 404


@pytest.mark.django_db
def test_erased_recipients_token_stops_working(api: APIClient, demo: dict[str, Any]) -> None:
    token = recipient_token_mint(recipient=demo["recipient"]).token
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    assert app.get(URL.format("user-1") + "/preferences").status_code == 200

    api.delete(URL.format("user-1"))

    response = app.get(URL.format("user-1") + "/preferences")
    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")


@pytest.mark.django_db
def test_put_after_erase_creates_a_fresh_recipient(api: APIClient, demo: dict[str, Any]) -> None:
    api.delete(URL.format("user-1"))

    response = api.put(URL.format("user-1"), {"email": "new@example.com"}, format="json")

    assert response.status_code == 201
    assert response.json()["name"] == ""
