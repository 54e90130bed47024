"""The inbox event stream (SSE) against a real uvicorn process, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.test import Client
from django.utils import timezone

from apps.inbox.realtime import NOTIFICATION_EVENT, inbox_group
from apps.inbox.services import inbox_message_archive
from apps.inbox.stream import _relay
from apps.recipients.models import Recipient
from apps.recipients.tokens import SALT, recipient_token_mint
from tests.apps.inbox.test_inbox_socket import deliver
from tests.factories import InboxMessageFactory, RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import wait_until
from tests.support.sse import InboxStream

pytestmark = [pytest.mark.django_db(transaction=True)]

HEARTBEAT_SECONDS = 0.3


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(
        env={
            "INBOX_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "INBOX_PING_SECONDS": "0.5",
        },
        name="inbox-stream",
    )
    yield proc
    proc.stop()


def token_for(recipient: Recipient, ttl_seconds: int | None = None) -> str:
    return recipient_token_mint(recipient=recipient, ttl_seconds=ttl_seconds).token


def group_members(recipient: Recipient) -> int:
    """Channels in the recipient's group, as channels-redis stores them."""
    layer = get_channel_layer()
    key = layer._group_key(inbox_group(recipient.pk))  # channels-redis names its keys
    return int(redis.Redis.from_url(settings.REDIS_URL).zcard(key))


def test_on_connect_the_counts_then_a_live_message_with_its_id(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    InboxMessageFactory(recipient=recipient)

    with InboxStream(server.url, token_for(recipient)) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        assert stream.response.headers["Cache-Control"] == "no-cache"
        assert stream.next().retry == 3000
        assert stream.data() == {"type": "unread_count", "count": 1, "unseen": 1}
        message = deliver(recipient, "live")
        event = stream.next()
        while event.data is None or event.data["type"] == "ping":
            event = stream.next()

    assert event.id == str(message.id)
    assert event.data["type"] == "notification"
    assert event.data["id"] == message.id
    assert event.data["title"] == "live"
    assert event.data["prev_id"] is not None


@pytest.mark.parametrize("how", ["last_event_id", "since", "both"])
def test_catch_up_from_last_event_id_or_since(server: AsgiServer, how: str) -> None:
    recipient = RecipientFactory()
    old, missed_1, missed_2 = (InboxMessageFactory(recipient=recipient) for _ in range(3))
    kwargs = {
        "last_event_id": {"last_event_id": str(old.id)},
        "since": {"since": str(old.id)},
        # The browser's reconnect keeps the URL's since= and adds the newer Last-Event-ID.
        "both": {"since": "0", "last_event_id": str(old.id)},
    }[how]

    with InboxStream(server.url, token_for(recipient), **kwargs) as stream:
        first, second = stream.data(), stream.data()
        counts = stream.data()

    assert (first["id"], second["id"]) == (missed_1.id, missed_2.id)  # oldest first
    assert counts == {"type": "unread_count", "count": 3, "unseen": 3}


def test_the_relay_drops_the_live_copy_of_a_message_the_catch_up_sent() -> None:
    # A message stored after the stream joined its group but before the catch-up read is in
    # both: the relay must drop the live copy, once (a later event with that id is not a copy).
    replayed = {7}
    event = {"type": NOTIFICATION_EVENT, "message": {"id": 7, "title": "t"}}

    first, second = _relay(event, replayed), _relay(event, replayed)
    other = _relay({"type": NOTIFICATION_EVENT, "message": {"id": 8}}, replayed)

    assert first is None
    assert second == {"type": "notification", "id": 7, "title": "t"}
    assert other == {"type": "notification", "id": 8}


def test_live_messages_after_the_catch_up_arrive_once_in_order(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    old = InboxMessageFactory(recipient=recipient)
    token = token_for(recipient)

    with InboxStream(server.url, token, since=str(old.id)) as stream:
        stream.data()  # counts
        live = deliver(recipient, "after")
        later = deliver(recipient, "later")
        seen = [stream.data()["id"], stream.data()["id"]]

    assert seen == [live.id, later.id]


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("token", ["", "garbage", "expired"])
def test_a_bad_or_expired_token_is_401_before_any_event(
    server: AsgiServer, token: str, header: bool
) -> None:
    if token == "expired":
        recipient = RecipientFactory()
        token = signing.dumps(
            {"r": recipient.public_id.hex, "e": int(timezone.now().timestamp()) - 1}, salt=SALT
        )

    with InboxStream(server.url, token, header=header) as stream:
        response, body = stream.response, stream.response.json()

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Recipient"
    assert body["code"] == "authentication_failed"


def test_no_token_at_all_is_401(server: AsgiServer) -> None:
    with InboxStream(server.url, None) as stream:
        assert stream.response.status_code == 401


def test_a_recipient_token_streams_only_its_own_inbox(server: AsgiServer) -> None:
    mine = RecipientFactory()
    same_client = RecipientFactory(client=mine.client)
    other_client = RecipientFactory()
    theirs = [InboxMessageFactory(recipient=r) for r in (same_client, other_client)]

    with InboxStream(server.url, token_for(mine), since="0") as stream:
        counts = stream.data()  # nothing to catch up: the others' messages are not mine
        for recipient in (same_client, other_client):
            deliver(recipient, "not yours")
        own = deliver(mine, "yours")
        live = stream.data()

    assert counts == {"type": "unread_count", "count": 0, "unseen": 0}
    assert live["id"] == own.id
    assert all(m.id < own.id for m in theirs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Last-Event-ID", "abc"),
        ("Last-Event-ID", "-1"),
        ("Last-Event-ID", "9223372036854775808"),
        ("Last-Event-ID", "1.5"),
        ("since", "²"),
        ("since", "x"),
    ],
)
def test_a_malformed_cursor_is_400_naming_it(server: AsgiServer, field: str, value: str) -> None:
    recipient = RecipientFactory()
    kwargs = {"last_event_id": value} if field == "Last-Event-ID" else {"since": value}

    with InboxStream(server.url, token_for(recipient), **kwargs) as stream:
        response, body = stream.response, stream.response.json()

    assert response.status_code == 400
    assert body == {
        "code": "invalid",
        "message": "Invalid request.",
        "fields": {field: ["Expected a message id."]},
    }


def test_heartbeat_comments_and_pings_with_the_newest_id(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    newest = InboxMessageFactory(recipient=recipient)

    with InboxStream(server.url, token_for(recipient)) as stream:
        events = [stream.next() for _ in range(8)]

    comments = [c for e in events for c in e.comments]
    pings = [e.data for e in events if e.data and e.data["type"] == "ping"]
    assert "keep-alive" in comments
    assert pings
    assert pings[0] == {"type": "ping", "latest_id": newest.id}


def test_archive_is_relayed_with_the_new_counts(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    message = InboxMessageFactory(recipient=recipient)

    with InboxStream(server.url, token_for(recipient)) as stream:
        stream.data()
        inbox_message_archive(recipient=recipient, message_id=message.id)
        update = stream.data()

    assert update == {
        "type": "unread_count",
        "count": 0,
        "unseen": 0,
        "read": [],
        "read_all": False,
        "archived": [message.id],
    }


def test_the_stream_ends_when_its_token_expires(server: AsgiServer) -> None:
    recipient = RecipientFactory()

    with InboxStream(server.url, token_for(recipient, ttl_seconds=2)) as stream:
        stream.data()
        assert stream.data() == {"type": "expired"}
        with pytest.raises(StopIteration):
            stream.next()


def test_a_client_that_goes_away_leaves_the_group(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    stream = InboxStream(server.url, token_for(recipient))
    stream.data()
    assert group_members(recipient) == 1

    stream.close()

    wait_until(lambda: group_members(recipient) == 0, timeout=10)


def test_under_wsgi_the_stream_refuses_with_503() -> None:
    # Django's test client is a WSGI request: a stream there would hold a thread forever.
    recipient = RecipientFactory()

    response = Client().get(
        "/api/v1/inbox/stream", HTTP_AUTHORIZATION=f"Recipient {token_for(recipient)}"
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0  # API.md: every 503 says when to retry
    assert response.json()["code"] == "unavailable"


def test_only_get() -> None:
    response = Client().post("/api/v1/inbox/stream")

    assert response.status_code == 405
