from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.recipients.models import Device, Preference, Recipient
from apps.recipients.tokens import recipient_token_verify
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import DeviceFactory, RecipientFactory

PREFS = "/api/v1/recipients/{}/preferences"
DEVICES = "/api/v1/recipients/{}/devices"
TOKEN = "/api/v1/recipients/{}/token"
FULL = {
    "channels": {"sms": False},
    "categories": {"marketing": {"email": False}},
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "daily_limit": 50,
    "digest": {"social": "daily@09:00", "comments": "hourly", "billing": "off"},
}


def as_recipient(recipient: Recipient, ttl: int = 3600) -> APIClient:
    from apps.recipients.tokens import recipient_token_mint

    app = APIClient()
    token = recipient_token_mint(recipient=recipient, ttl_seconds=ttl).token
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    return app


# --- preferences -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_preferences_default_when_never_set(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.get(PREFS.format("user-1"))

    assert response.status_code == 200
    assert response.json() == {
        "channels": {},
        "categories": {},
        "quiet_hours": None,
        "daily_limit": None,
        "digest": {},
    }


@pytest.mark.django_db
def test_put_preferences_with_service_key(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.put(PREFS.format("user-1"), FULL, format="json")

    assert response.status_code == 200
    assert response.json() == FULL
    pref = Preference.objects.get(recipient=demo["recipient"])
    assert pref.quiet_start == dt.time(22, 0)
    assert pref.quiet_end == dt.time(7, 0)
    assert api.get(PREFS.format("user-1")).json() == FULL


@pytest.mark.django_db
def test_put_preferences_partial_keeps_other_keys(api: APIClient, demo: dict[str, Any]) -> None:
    api.put(PREFS.format("user-1"), FULL, format="json")

    response = api.put(
        PREFS.format("user-1"), {"daily_limit": None, "quiet_hours": None}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {**FULL, "daily_limit": None, "quiet_hours": None}


@pytest.mark.django_db
def test_recipient_token_reads_and_writes_own_preferences(demo: dict[str, Any]) -> None:
    app = as_recipient(demo["recipient"])

    put = app.put(PREFS.format("user-1"), {"channels": {"email": False}}, format="json")
    got = app.get(PREFS.format("user-1"))

    assert put.status_code == 200
    assert got.status_code == 200
    assert got.json()["channels"] == {"email": False}


@pytest.mark.django_db
def test_recipient_token_cannot_touch_another_recipient(demo: dict[str, Any]) -> None:
    other = RecipientFactory(client=demo["client"], external_id="user-2")
    app = as_recipient(demo["recipient"])

    responses = [
        app.get(PREFS.format("user-2")),
        app.put(PREFS.format("user-2"), {"daily_limit": 1}, format="json"),
        app.post(DEVICES.format("user-2"), {"token": "tok", "platform": "ios"}, format="json"),
        app.delete(DEVICES.format("user-2") + "/tok"),
    ]

    for response in responses:
        assert response.status_code == 403
        assert_error_shape(response.json(), "permission_denied")
    assert Preference.objects.filter(recipient=other).count() == 0
    assert Device.objects.count() == 0


@pytest.mark.django_db
def test_expired_or_forged_recipient_token_is_401(demo: dict[str, Any]) -> None:
    recipient: Recipient = demo["recipient"]
    from django.core import signing

    from apps.recipients.tokens import SALT

    expired = signing.dumps(
        {"r": recipient.pk, "e": int((timezone.now() - dt.timedelta(seconds=5)).timestamp())},
        salt=SALT,
    )
    for token in (expired, "garbage", expired[:-2] + "xx"):
        app = APIClient()
        app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")

        response = app.get(PREFS.format("user-1"))

        assert response.status_code == 401
        assert_error_shape(response.json(), "authentication_failed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"pigeon": False}}, "channels"),
        ({"channels": {"sms": "no"}}, "channels"),
        ({"channels": ["sms"]}, "channels"),
        ({"categories": {"marketing": {"fax": False}}}, "categories"),
        ({"categories": {"marketing": False}}, "categories"),
        ({"categories": {"bad name!": {"email": False}}}, "categories"),
        ({"categories": {"marketing\n": {"email": False}}}, "categories"),  # matched whole
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "10pm", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": "22-07"}, "quiet_hours"),
        ({"daily_limit": -1}, "daily_limit"),
        ({"daily_limit": "50"}, "daily_limit"),
        ({"daily_limit": 2.5}, "daily_limit"),
        ({"daily_limit": True}, "daily_limit"),
        ({"digest": {"social": "weekly"}}, "digest"),
        ({"digest": {"social": "daily@25:00"}}, "digest"),
        ({"digest": {"social": "daily@9:00"}}, "digest"),
        ({"digest": {"social": True}}, "digest"),
        ({"digest": {"bad name!": "hourly"}}, "digest"),
        ({"digest": ["hourly"]}, "digest"),
        ({"digest": {f"c{i}": "hourly" for i in range(101)}}, "digest"),
        ({"digest": {f"c{i}": "hourly" for i in range(20_000)}}, "digest"),
        ({"digest": {"social\n": "hourly"}}, "digest"),
        ({"digest": {"x" * 51: "hourly"}}, "digest"),
    ],
)
def test_put_preferences_rejects_bad_input(
    api: APIClient, demo: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = api.put(PREFS.format("user-1"), body, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {field}
    assert Preference.objects.count() == 0


@pytest.mark.django_db
def test_a_stored_category_name_the_rule_refuses_does_not_lock_the_preferences(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Stored before the rule covered POST /notifications: an unsubscribe link of a notification
    # sent with the free-text category "Weekly news".
    Preference.objects.create(
        recipient=demo["recipient"], categories={"Weekly news": {"email": False}}
    )
    stored = api.get(PREFS.format("user-1")).json()["categories"]

    edited = {**stored, "Weekly news": {"email": False, "sms": False}, "orders": {"sms": False}}
    kept = api.put(PREFS.format("user-1"), {"categories": edited}, format="json")
    new_bad = api.put(
        PREFS.format("user-1"),
        {"categories": {**edited, "Daily news": {"email": False}}},
        format="json",
    )

    assert kept.status_code == 200, kept.content
    assert new_bad.status_code == 400
    assert new_bad.json()["fields"] == {"categories": ["Invalid category name(s): Daily news."]}
    assert Preference.objects.get(recipient=demo["recipient"]).categories == edited


@pytest.mark.django_db
def test_digest_cadences_for_100_categories_of_50_characters_are_accepted(
    api: APIClient, demo: dict[str, Any]
) -> None:
    cadences = {f"{i:03d}".ljust(50, "x"): "hourly" for i in range(100)}

    response = api.put(PREFS.format("user-1"), {"digest": cadences}, format="json")

    assert response.status_code == 200, response.content
    assert Preference.objects.get(recipient=demo["recipient"]).digest == cadences


@pytest.mark.django_db
def test_put_preferences_malformed_json(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.put(PREFS.format("user-1"), '{"daily_limit": ', content_type="application/json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "parse_error")
    assert Preference.objects.count() == 0


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_device_is_idempotent_on_token(api: APIClient, demo: dict[str, Any]) -> None:
    body = {"token": "fcm-token-1", "platform": "android"}

    first = api.post(DEVICES.format("user-1"), body, format="json")
    second = api.post(DEVICES.format("user-1"), body, format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["token"] == "fcm-token-1"
    assert first.json()["active"] is True
    assert Device.objects.filter(token="fcm-token-1").count() == 1


@pytest.mark.django_db
def test_reregistering_moves_token_and_reactivates(demo: dict[str, Any]) -> None:
    old_owner = RecipientFactory(client=demo["client"], external_id="user-0")
    DeviceFactory(
        recipient=old_owner, token="shared-phone", active=False, deactivated_reason="unregistered"
    )
    app = as_recipient(demo["recipient"])

    response = app.post(
        DEVICES.format("user-1"), {"token": "shared-phone", "platform": "ios"}, format="json"
    )

    assert response.status_code == 200
    device = Device.objects.get(token="shared-phone")
    assert device.recipient == demo["recipient"]
    assert (device.active, device.platform, device.deactivated_reason) == (True, "ios", "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "ios"}, "token"),
        ({"token": "t"}, "platform"),
        ({"token": "t", "platform": "blackberry"}, "platform"),
        ({"token": 123, "platform": "ios"}, "token"),
        ({"token": "", "platform": "ios"}, "token"),
        ({"token": "x" * 4097, "platform": "ios"}, "token"),
    ],
)
def test_register_device_rejects_bad_input(
    api: APIClient, demo: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = api.post(DEVICES.format("user-1"), body, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {field}
    assert Device.objects.count() == 0


@pytest.mark.django_db
def test_delete_device(api: APIClient, demo: dict[str, Any]) -> None:
    DeviceFactory(recipient=demo["recipient"], token="tok-1")

    response = api.delete(DEVICES.format("user-1") + "/tok-1")

    assert response.status_code == 204
    assert Device.objects.filter(token="tok-1").count() == 0
    again = api.delete(DEVICES.format("user-1") + "/tok-1")
    assert again.status_code == 404
    assert_error_shape(again.json(), "not_found")


@pytest.mark.django_db
def test_delete_device_of_another_recipient_is_404(api: APIClient, demo: dict[str, Any]) -> None:
    other = RecipientFactory(client=demo["client"], external_id="user-2")
    DeviceFactory(recipient=other, token="tok-2")

    response = api.delete(DEVICES.format("user-1") + "/tok-2")

    assert response.status_code == 404
    assert Device.objects.filter(token="tok-2").count() == 1


@pytest.mark.django_db
def test_recipient_deletes_own_device(demo: dict[str, Any]) -> None:
    DeviceFactory(recipient=demo["recipient"], token="tok-3")

    response = as_recipient(demo["recipient"]).delete(DEVICES.format("user-1") + "/tok-3")

    assert response.status_code == 204
    assert Device.objects.count() == 0


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mint_token(api: APIClient, demo: dict[str, Any]) -> None:
    before = timezone.now()

    response = api.post(TOKEN.format("user-1"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert recipient_token_verify(body["token"]) == demo["recipient"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert before + dt.timedelta(hours=23) < expires <= timezone.now() + dt.timedelta(hours=24)


@pytest.mark.django_db
def test_mint_token_with_ttl(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.post(TOKEN.format("user-1"), {"ttl_seconds": 600}, format="json")

    assert response.status_code == 200
    expires = dt.datetime.fromisoformat(response.json()["expires_at"])
    assert expires <= timezone.now() + dt.timedelta(seconds=600)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"ttl_seconds": 5}, {"ttl_seconds": "600"}, [1]])
def test_mint_token_rejects_bad_ttl(api: APIClient, demo: dict[str, Any], body: Any) -> None:
    response = api.post(TOKEN.format("user-1"), body, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")


@pytest.mark.django_db
def test_minted_token_authenticates_recipient_endpoints(
    api: APIClient, demo: dict[str, Any]
) -> None:
    token = api.post(TOKEN.format("user-1")).json()["token"]
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")

    response = app.put(PREFS.format("user-1"), {"daily_limit": 5}, format="json")

    assert response.status_code == 200
    assert Preference.objects.get(recipient=demo["recipient"]).daily_limit == 5
