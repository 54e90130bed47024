"""The inbox REST endpoints, with recipient-token auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from apps.recipients.tokens import SALT, recipient_token_mint
from tests.factories import DeliveryFactory, InboxMessageFactory, RecipientFactory

pytestmark = [pytest.mark.django_db]


def as_recipient(recipient: Recipient) -> APIClient:
    client = APIClient()
    token = recipient_token_mint(recipient=recipient).token
    client.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    return client


@pytest.fixture
def recipient() -> Recipient:
    return RecipientFactory()


def test_list_is_newest_first_with_cursor_pagination(recipient: Recipient) -> None:
    ids = [InboxMessageFactory(recipient=recipient, title=f"m{i}").id for i in range(5)]
    InboxMessageFactory()  # someone else's
    client = as_recipient(recipient)

    first = client.get("/api/v1/inbox?limit=2").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    assert [m["id"] for m in first["results"]] == [ids[4], ids[3]]
    assert [m["id"] for m in second["results"]] == [ids[2], ids[1]]
    assert [m["id"] for m in third["results"]] == [ids[0]]
    assert third["next"] is None
    assert first["unread_count"] == 5
    assert first["results"][0] == {
        "id": ids[4],
        "title": "m4",
        "body": "Order A-1",
        "data": {},
        "created_at": first["results"][0]["created_at"],
        "read_at": None,
        "seen_at": None,
        "archived_at": None,
        "read": False,
    }


def test_list_can_show_only_unread(recipient: Recipient) -> None:
    unread = InboxMessageFactory(recipient=recipient)
    InboxMessageFactory(recipient=recipient, read_at=timezone.now())

    body = as_recipient(recipient).get("/api/v1/inbox?unread=true").json()

    assert [m["id"] for m in body["results"]] == [unread.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=abc", "cursor"),
        ("cursor=0", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ],
)
def test_list_rejects_bad_query_in_error_shape(
    recipient: Recipient, query: str, field: str
) -> None:
    response = as_recipient(recipient).get(f"/api/v1/inbox?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == [field]


def test_huge_cursor_is_400_not_500(recipient: Recipient) -> None:
    response = as_recipient(recipient).get("/api/v1/inbox?cursor=99999999999999999999999")

    assert response.status_code == 400
    assert "cursor" in response.json()["fields"]


def test_unread_count_counts_only_own_unread(recipient: Recipient) -> None:
    InboxMessageFactory.create_batch(2, recipient=recipient)
    InboxMessageFactory(recipient=recipient, read_at=timezone.now())
    InboxMessageFactory()  # someone else's

    response = as_recipient(recipient).get("/api/v1/inbox/unread-count")

    assert response.status_code == 200
    assert response.json() == {"count": 2}


def test_mark_read_marks_message_and_delivery_read_once(
    recipient: Recipient, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    delivery = DeliveryFactory(
        recipient=recipient,
        notification__client=recipient.client,
        channel="inapp",
        status=DeliveryStatus.SENT,
    )
    message = InboxMessageFactory(recipient=recipient, delivery=delivery)
    client = as_recipient(recipient)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/api/v1/inbox/{message.id}/read")
    again = client.post(f"/api/v1/inbox/{message.id}/read")

    assert response.status_code == 200
    assert response.json()["read"] is True
    assert again.status_code == 200
    assert again.json()["read_at"] == response.json()["read_at"]
    assert len(callbacks) == 1  # the unread count push
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.READ
    assert list(delivery.events.values_list("status", flat=True)) == ["read"]
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 0}


def test_mark_read_of_someone_elses_message_is_404_and_changes_nothing(
    recipient: Recipient,
) -> None:
    other = InboxMessageFactory()

    response = as_recipient(recipient).post(f"/api/v1/inbox/{other.id}/read")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No such message.", "fields": {}}
    other.refresh_from_db()
    assert other.read_at is None


def test_mark_read_of_out_of_range_id_is_404(recipient: Recipient) -> None:
    response = as_recipient(recipient).post("/api/v1/inbox/99999999999999999999999/read")

    assert response.status_code == 404


def test_read_all_marks_every_unread_message_and_delivery(recipient: Recipient) -> None:
    deliveries = [
        DeliveryFactory(
            recipient=recipient,
            notification__client=recipient.client,
            channel="inapp",
            status=DeliveryStatus.SENT,
        )
        for _ in range(2)
    ]
    for delivery in deliveries:
        InboxMessageFactory(recipient=recipient, delivery=delivery)
    InboxMessageFactory(recipient=recipient)
    others = InboxMessageFactory()
    client = as_recipient(recipient)

    response = client.post("/api/v1/inbox/read-all")

    assert response.status_code == 200
    assert response.json() == {"updated": 3, "unread_count": 0}
    assert not InboxMessage.objects.filter(recipient=recipient, read_at__isnull=True).exists()
    assert {d.status for d in Delivery.objects.filter(recipient=recipient)} == {"read"}
    others.refresh_from_db()
    assert others.read_at is None
    assert client.post("/api/v1/inbox/read-all").json() == {"updated": 0, "unread_count": 0}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Recipient not-a-token",
        "Recipient",
        "Bearer nk_nope_nope",
    ],
)
def test_inbox_needs_a_recipient_token(authorization: str | None) -> None:
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.get("/api/v1/inbox")

    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "fields"}


def test_expired_token_is_401(recipient: Recipient) -> None:
    expired = signing.dumps(
        {"r": recipient.public_id.hex, "e": int(timezone.now().timestamp()) - 10}, salt=SALT
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Recipient {expired}")

    assert client.get("/api/v1/inbox/unread-count").status_code == 401
    assert client.post("/api/v1/inbox/read-all").status_code == 401


def test_a_service_api_key_is_refused_with_403(api: APIClient) -> None:
    assert api.get("/api/v1/inbox").status_code == 403
    assert api.post("/api/v1/inbox/read-all").status_code == 403


@pytest.mark.parametrize("query", ["cursor=", "limit=", "unread="])
def test_empty_query_values_are_400(recipient: Recipient, query: str) -> None:
    response = as_recipient(recipient).get(f"/api/v1/inbox?{query}")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == [query.rstrip("=")]


def test_malformed_body_on_read_all_is_400_and_reads_nothing(recipient: Recipient) -> None:
    message = InboxMessageFactory(recipient=recipient)

    response = as_recipient(recipient).post(
        "/api/v1/inbox/read-all", data="{oops", content_type="application/json"
    )

    assert response.status_code == 400
    message.refresh_from_db()
    assert message.read_at is None
