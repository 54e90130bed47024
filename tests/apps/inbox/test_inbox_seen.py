"""`POST /api/v1/inbox/seen` (the bell opened): marks the listed or all messages seen, pushes the
unseen and unread counts over the WebSocket, and stands down escalation steps waiting on
`seen` (not those waiting on `read`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import redis
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import InboxMessageFactory, RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(name="inbox-seen")
    yield proc
    proc.stop()


def as_recipient(recipient: Recipient) -> APIClient:
    client = APIClient()
    token = recipient_token_mint(recipient=recipient).token
    client.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    return client


def test_seen_marks_the_listed_then_all_and_answers_the_counts() -> None:
    recipient = RecipientFactory()
    first = InboxMessageFactory.create_batch(3, recipient=recipient)[0]
    other = InboxMessageFactory()  # someone else's: never touched
    client = as_recipient(recipient)

    listed = client.post("/api/v1/inbox/seen", {"ids": [first.id, other.id]}, format="json")
    again = client.post("/api/v1/inbox/seen", {"ids": [first.id]}, format="json")
    rest = client.post("/api/v1/inbox/seen", {}, format="json")

    assert listed.json() == {"updated": 1, "unseen_count": 2, "unread_count": 3}
    assert again.json()["updated"] == 0
    assert rest.json() == {"updated": 2, "unseen_count": 0, "unread_count": 3}
    assert InboxMessage.objects.get(pk=other.pk).seen_at is None
    assert client.get("/api/v1/inbox").json()["results"][0]["seen_at"] is not None


@pytest.mark.parametrize("body", [{"ids": "all"}, {"ids": [0]}, {"ids": ["x"]}])
def test_bad_ids_are_a_400_naming_ids(body: object) -> None:
    response = as_recipient(RecipientFactory()).post("/api/v1/inbox/seen", body, format="json")

    assert response.status_code == 400
    assert "ids" in response.json()["fields"]


def test_a_read_is_seen_too() -> None:
    recipient = RecipientFactory()
    message = InboxMessageFactory(recipient=recipient)

    as_recipient(recipient).post(f"/api/v1/inbox/{message.id}/read")

    message.refresh_from_db()
    assert message.seen_at == message.read_at is not None


def test_seen_pushes_the_unseen_and_unread_counts(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    InboxMessageFactory.create_batch(2, recipient=recipient)
    token = recipient_token_mint(recipient=recipient).token

    with InboxSocket(server.ws_url, token) as socket:
        assert socket.receive_type("unread_count") == {
            "type": "unread_count",
            "count": 2,
            "unseen": 2,
        }
        response = requests.post(
            f"{server.url}/api/v1/inbox/seen",
            headers={"Authorization": f"Recipient {token}"},
            json={},
            timeout=10,
        )
        pushed = socket.receive_type("unread_count")

    assert response.status_code == 200
    assert pushed == {
        "type": "unread_count",
        "count": 2,
        "unseen": 0,
        "read": [],
        "read_all": False,
    }


def test_seen_stands_down_steps_waiting_on_seen_not_those_waiting_on_read(
    api: APIClient, demo: dict[str, object], clean_redis: redis.Redis
) -> None:
    # Given an in-app message (sent, in the inbox) escalated by email unless seen, SMS unless read
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["inapp"],
            "escalation": [
                {"after": "5m", "channels": ["email"], "unless": "seen"},
                {"after": "10m", "channels": ["sms"], "unless": "read"},
            ],
        },
        format="json",
    )
    ids = {d["channel"]: d["id"] for d in response.json()["deliveries"]}
    Delivery.objects.filter(id=ids["inapp"]).update(status=DeliveryStatus.SENT)
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    InboxMessageFactory(recipient=recipient, delivery_id=ids["inapp"])

    # When the recipient opens the bell
    as_recipient(recipient).post("/api/v1/inbox/seen", {}, format="json")

    # Then the email step is stood down, the SMS step still waits and goes when due
    email, sms = Delivery.objects.get(id=ids["email"]), Delivery.objects.get(id=ids["sms"])
    assert (email.status, email.reason) == ("cancelled", "engaged")
    assert email.events.last().detail == "engaged: seen"  # type: ignore[union-attr]
    assert sms.status == "scheduled"
    assert deliveries_release_due(now=timezone.now() + dt.timedelta(minutes=11)) == 1
    assert Delivery.objects.get(id=ids["sms"]).status == "queued"


def test_read_all_and_seen_lock_the_rows_in_the_same_order() -> None:
    # Opposite orders deadlock a read-all racing a seen on the same recipient's rows.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.inbox.services import inbox_mark_seen, inbox_read_all

    recipient = RecipientFactory()
    InboxMessageFactory.create_batch(2, recipient=recipient)

    locks = []
    for mark in (inbox_mark_seen, inbox_read_all):
        with CaptureQueriesContext(connection) as queries:
            assert mark(recipient=recipient) == 2
        locks += [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]

    assert len(locks) == 2
    assert all(sql.endswith("ORDER BY 1 ASC FOR UPDATE") for sql in locks), locks  # 1: the id
