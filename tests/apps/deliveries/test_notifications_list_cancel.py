"""GET /api/v1/notifications (filters, cursor pagination) and POST .../{id}/cancel."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from tests.factories import ApiKeyFactory, RecipientFactory

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    return body


def send(api: APIClient, **extra: Any) -> str:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.django_db
def test_list_is_newest_first_with_status_counts(api: APIClient, demo: dict[str, object]) -> None:
    first = send(api, channels=["email"])
    second = send(api, channels=["email", "push"])

    response = api.get(URL)

    assert ids(response) == [second, first]
    body = response.json()
    assert body["next"] is None
    newest = body["results"][0]
    assert newest["template"] == "order_shipped"
    assert newest["channels"] == ["email", "push"]
    # push is skipped: the recipient has no device
    assert newest["deliveries_by_status"] == {"queued": 1, "skipped": 1}


@pytest.mark.django_db
def test_cursor_pagination_walks_every_page_once(api: APIClient, demo: dict[str, object]) -> None:
    created = [send(api, channels=["email"]) for _ in range(7)]

    seen: list[str] = []
    url: str | None = f"{URL}?limit=3"
    pages = 0
    while url:
        response = api.get(url)
        seen += ids(response)
        url = response.json()["next"]
        pages += 1

    assert pages == 3
    assert seen == list(reversed(created))


@pytest.mark.django_db
def test_filters_by_recipient_status_and_channel(api: APIClient, demo: dict[str, object]) -> None:
    RecipientFactory(client=demo["client"], external_id="user-2")
    to_one = send(api, channels=["email"])
    to_two = send(api, recipient="user-2", channels=["sms"])
    skipped = send(api, channels=["push"])

    assert ids(api.get(URL, {"recipient": "user-2"})) == [to_two]
    assert ids(api.get(URL, {"channel": "email"})) == [to_one]
    assert ids(api.get(URL, {"status": "skipped"})) == [skipped]
    assert ids(api.get(URL, {"recipient": "user-1", "status": "queued"})) == [to_one]
    # Filters apply to the same delivery: user-1 has no queued sms.
    assert ids(api.get(URL, {"recipient": "user-1", "channel": "sms"})) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),  # ["x", "y"]: decodes, wrong types
        ({"cursor": "WzFd"}, "cursor"),  # [1]: wrong length
        ({"recipient": "x" * 201}, "recipient"),
    ],
)
def test_bad_filters_are_400_naming_them(
    api: APIClient, demo: dict[str, object], params: dict[str, str], field: str
) -> None:
    send(api, channels=["email"])

    response = api.get(URL, params)

    assert field in assert_error(response, 400, "invalid")["fields"]


@pytest.mark.django_db
def test_list_shows_only_the_keys_client_but_everything_to_ops(
    api: APIClient, demo: dict[str, object]
) -> None:
    mine = send(api, channels=["email"])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")
    ops = APIClient()
    ops.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw(is_ops=True)[1]}")

    assert ids(other.get(URL)) == []
    assert ids(ops.get(URL)) == [mine]


@pytest.mark.django_db
def test_cancel_cancels_what_is_not_yet_sent_and_returns_the_notification(
    api: APIClient, demo: dict[str, object]
) -> None:
    notification_id = send(api, channels=["email", "sms", "push"])
    Delivery.objects.filter(channel="sms").update(status=DeliveryStatus.SENT)

    response = api.post(f"{URL}/{notification_id}/cancel")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == notification_id
    statuses = {d["channel"]: d["status"] for d in body["deliveries"]}
    assert statuses == {"email": "cancelled", "sms": "sent", "push": "skipped"}
    email = next(d for d in body["deliveries"] if d["channel"] == "email")
    assert email["timeline"][-1]["status"] == "cancelled"
    assert DeliveryEvent.objects.filter(status=DeliveryStatus.CANCELLED).count() == 1


@pytest.mark.django_db
def test_cancel_twice_is_harmless(api: APIClient, demo: dict[str, object]) -> None:
    notification_id = send(api, channels=["email"])

    api.post(f"{URL}/{notification_id}/cancel")
    again = api.post(f"{URL}/{notification_id}/cancel")

    assert again.status_code == 200
    assert DeliveryEvent.objects.filter(status=DeliveryStatus.CANCELLED).count() == 1


@pytest.mark.django_db
def test_cancel_another_clients_notification_is_404_and_changes_nothing(
    api: APIClient, demo: dict[str, object]
) -> None:
    notification_id = send(api, channels=["email"])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")

    response = other.post(f"{URL}/{notification_id}/cancel")

    assert_error(response, 404, "not_found")
    assert Delivery.objects.get().status == DeliveryStatus.QUEUED
    assert_error(api.post(f"{URL}/00000000-0000-0000-0000-000000000000/cancel"), 404, "not_found")
    assert Notification.objects.count() == 1
