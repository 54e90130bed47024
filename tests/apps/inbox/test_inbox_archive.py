"""Archive, unarchive and `GET /inbox?status=` (recipient-token auth)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from tests.apps.inbox.test_inbox_api import as_recipient
from tests.factories import InboxMessageFactory, RecipientFactory

pytestmark = [pytest.mark.django_db]


def ids(client: APIClient, query: str = "") -> list[int]:
    response = client.get(f"/api/v1/inbox{query}")
    assert response.status_code == 200, response.content
    return [m["id"] for m in response.json()["results"]]


@pytest.fixture
def recipient() -> Recipient:
    return RecipientFactory()


def test_archive_takes_a_message_out_of_the_list_and_the_counts(recipient: Recipient) -> None:
    kept, archived = (
        InboxMessageFactory(recipient=recipient),
        InboxMessageFactory(recipient=recipient),
    )
    client = as_recipient(recipient)

    response = client.post(f"/api/v1/inbox/{archived.id}/archive")

    assert response.status_code == 200
    assert response.json()["archived_at"] is not None
    assert response.json()["read"] is False  # read and seen stay as they were
    assert ids(client) == [kept.id]
    assert ids(client, "?status=archived") == [archived.id]
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 1}
    assert client.get("/api/v1/inbox").json()["unread_count"] == 1


def test_archive_and_unarchive_are_idempotent(recipient: Recipient) -> None:
    message = InboxMessageFactory(recipient=recipient)
    client = as_recipient(recipient)

    first = client.post(f"/api/v1/inbox/{message.id}/archive").json()["archived_at"]
    second = client.post(f"/api/v1/inbox/{message.id}/archive").json()["archived_at"]
    assert first == second

    restored = client.post(f"/api/v1/inbox/{message.id}/unarchive")
    again = client.post(f"/api/v1/inbox/{message.id}/unarchive")

    assert restored.status_code == again.status_code == 200
    assert again.json()["archived_at"] is None
    assert ids(client) == [message.id]
    assert ids(client, "?status=archived") == []
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 1}


def test_another_recipients_message_cannot_be_archived(recipient: Recipient) -> None:
    other = InboxMessageFactory(recipient=RecipientFactory(client=recipient.client))
    client = as_recipient(recipient)

    for action in ("archive", "unarchive"):
        response = client.post(f"/api/v1/inbox/{other.id}/{action}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert InboxMessage.objects.get(id=other.id).archived_at is None


@pytest.mark.parametrize("message_id", ["0", "9223372036854775808"])
def test_out_of_range_ids_are_404(recipient: Recipient, message_id: str) -> None:
    response = as_recipient(recipient).post(f"/api/v1/inbox/{message_id}/archive")

    assert response.status_code == 404


def test_status_filters(recipient: Recipient) -> None:
    unread_unseen = InboxMessageFactory(recipient=recipient)
    seen = InboxMessageFactory(recipient=recipient, seen_at="2026-01-01T00:00:00Z")
    read = InboxMessageFactory(
        recipient=recipient, seen_at="2026-01-01T00:00:00Z", read_at="2026-01-01T00:00:00Z"
    )
    archived = InboxMessageFactory(recipient=recipient, archived_at="2026-01-01T00:00:00Z")
    client = as_recipient(recipient)

    assert ids(client) == [read.id, seen.id, unread_unseen.id]
    assert ids(client, "?status=unread") == [seen.id, unread_unseen.id]
    assert ids(client, "?status=unseen") == [unread_unseen.id]
    assert ids(client, "?status=archived") == [archived.id]
    assert ids(client, "?status=archived&limit=1&cursor=1") == []


def test_status_archived_pages_with_the_cursor(recipient: Recipient) -> None:
    archived = [
        InboxMessageFactory(recipient=recipient, archived_at="2026-01-01T00:00:00Z").id
        for _ in range(3)
    ]
    client = as_recipient(recipient)

    first = client.get("/api/v1/inbox?status=archived&limit=2").json()
    second = client.get(first["next"]).json()

    assert [m["id"] for m in first["results"]] == [archived[2], archived[1]]
    assert [m["id"] for m in second["results"]] == [archived[0]]
    assert second["next"] is None


@pytest.mark.parametrize("status", ["", "read", "ARCHIVED", "unread,archived", "\x00"])
def test_a_bad_status_is_400_naming_the_field(recipient: Recipient, status: str) -> None:
    response = as_recipient(recipient).get("/api/v1/inbox", {"status": status})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "status" in response.json()["fields"]


def test_read_all_leaves_archived_messages_alone(recipient: Recipient) -> None:
    shown = InboxMessageFactory(recipient=recipient)
    archived = InboxMessageFactory(recipient=recipient, archived_at="2026-01-01T00:00:00Z")
    client = as_recipient(recipient)

    response = client.post("/api/v1/inbox/read-all")

    assert response.json() == {"updated": 1, "unread_count": 0}
    assert InboxMessage.objects.get(id=shown.id).read_at is not None
    assert InboxMessage.objects.get(id=archived.id).read_at is None


def test_archive_needs_a_recipient_token(recipient: Recipient) -> None:
    message = InboxMessageFactory(recipient=recipient)

    response = APIClient().post(f"/api/v1/inbox/{message.id}/archive")

    assert response.status_code == 401
    assert InboxMessage.objects.get(id=message.id).archived_at is None
