"""The inbox WebSocket against a real uvicorn process, PostgreSQL and Redis (channel layer)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core import signing
from django.utils import timezone
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_deliver
from apps.recipients.models import Recipient
from apps.recipients.tokens import SALT, recipient_token_mint
from tests.factories import DeliveryFactory, InboxMessageFactory, RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import wait_until
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

PING_SECONDS = 0.5
IDLE_SECONDS = 2.0


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(
        env={"INBOX_PING_SECONDS": str(PING_SECONDS), "INBOX_IDLE_SECONDS": str(IDLE_SECONDS)},
        name="inbox-socket",
    )
    yield proc
    proc.stop()


def token_for(recipient: Recipient) -> str:
    return recipient_token_mint(recipient=recipient).token


def deliver(recipient: Recipient, title: str) -> InboxMessage:
    """What the inapp worker does: store the message, push it through the channel layer."""
    delivery = DeliveryFactory(
        recipient=recipient, notification__client=recipient.client, channel="inapp"
    )
    return inbox_message_deliver(
        delivery_id=str(delivery.id),
        recipient_id=recipient.pk,
        title=title,
        body=f"body of {title}",
        data={"k": title},
    )


@pytest.mark.parametrize("token", ["", "garbage", "expired"])
def test_bad_or_expired_token_is_closed_with_4401(server: AsgiServer, token: str) -> None:
    if token == "expired":
        recipient = RecipientFactory()
        token = signing.dumps(
            {"r": recipient.public_id.hex, "e": int(timezone.now().timestamp()) - 1}, salt=SALT
        )

    with InboxSocket(server.ws_url, token) as socket:
        assert socket.close_code() == 4401


def test_foreign_origin_is_refused(server: AsgiServer) -> None:
    token = token_for(RecipientFactory())

    with (
        pytest.raises(InvalidStatus) as refused,
        connect(
            f"{server.ws_url}/ws/inbox?token={token}",
            origin=Origin("http://evil.example"),
            proxy=None,
        ),
    ):
        pass

    assert refused.value.response.status_code == 403


def test_connect_sends_unread_count_then_live_notifications(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    InboxMessageFactory.create_batch(2, recipient=recipient)
    read = timezone.now()
    newest = InboxMessageFactory(recipient=recipient, read_at=read, seen_at=read)  # read is seen

    with InboxSocket(server.ws_url, token_for(recipient)) as socket:
        assert socket.receive() == {"type": "unread_count", "count": 2, "unseen": 2}
        message = deliver(recipient, "hello")
        got = socket.receive()

    assert got == {
        "type": "notification",
        "id": message.id,
        "title": "hello",
        "body": "body of hello",
        "data": {"k": "hello"},
        "created_at": message.created_at.isoformat(),
        "read_at": None,
        "seen_at": None,
        "prev_id": newest.id,  # the recipient's message before it: a client can see a gap
    }


def test_reconnect_with_since_receives_exactly_the_missed_messages_in_order(
    server: AsgiServer,
) -> None:
    recipient = RecipientFactory()
    token = token_for(recipient)
    with InboxSocket(server.ws_url, token) as socket:
        socket.receive_type("unread_count")
        seen = deliver(recipient, "seen")
        assert socket.receive()["id"] == seen.id
    missed = [deliver(recipient, f"missed-{i}").id for i in range(3)]

    with InboxSocket(server.ws_url, token, since=seen.id) as socket:
        replay = [socket.receive() for _ in range(4)]
        live = deliver(recipient, "live")
        after = socket.collect(1.5)

    assert [(m["type"], m.get("id")) for m in replay] == [
        *[("notification", i) for i in missed],
        ("unread_count", None),
    ]
    assert replay[-1]["count"] == 4
    assert [m["id"] for m in after if m["type"] == "notification"] == [live.id]


def test_another_recipients_messages_never_arrive(server: AsgiServer) -> None:
    alice, bob = RecipientFactory(), RecipientFactory()

    with (
        InboxSocket(server.ws_url, token_for(alice)) as alice_socket,
        InboxSocket(server.ws_url, token_for(bob)) as bob_socket,
    ):
        alice_socket.receive_type("unread_count")
        bob_socket.receive_type("unread_count")
        for_bob = deliver(bob, "for bob")
        bob_got = bob_socket.receive_type("notification")
        alice_got = alice_socket.collect(1.5)

    assert bob_got["id"] == for_bob.id
    assert alice_got == []


def test_another_recipients_messages_never_arrive_in_catch_up(server: AsgiServer) -> None:
    alice, bob = RecipientFactory(), RecipientFactory()
    deliver(bob, "for bob")

    with InboxSocket(server.ws_url, token_for(alice), since=0) as socket:
        got = socket.collect(1.0)

    assert got == [{"type": "unread_count", "count": 0, "unseen": 0}]


def test_mark_read_over_rest_pushes_the_new_count(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    first, second = deliver(recipient, "one"), deliver(recipient, "two")
    token = token_for(recipient)
    headers = {"Authorization": f"Recipient {token}"}

    with InboxSocket(server.ws_url, token) as socket:
        assert socket.receive_type("unread_count")["count"] == 2
        response = requests.post(
            f"{server.url}/api/v1/inbox/{first.id}/read", headers=headers, timeout=10
        )
        after_one = socket.receive_type("unread_count")
        requests.post(f"{server.url}/api/v1/inbox/read-all", headers=headers, timeout=10)
        after_all = socket.receive_type("unread_count")

    assert response.status_code == 200
    assert after_one == {
        "type": "unread_count",
        "count": 1,
        "unseen": 1,  # a read message is seen too
        "read": [first.id],
        "read_all": False,
    }
    assert after_all == {
        "type": "unread_count",
        "count": 0,
        "unseen": 0,
        "read": [],
        "read_all": True,
    }
    assert second.id not in after_one["read"]


# "%C2%B2" is "²", which str.isdigit() accepts and int() refuses; the last is past bigint.
@pytest.mark.parametrize("since", ["-1", "%C2%B2", "1" * 30])
def test_bad_since_is_closed_with_4400(server: AsgiServer, since: str) -> None:
    with InboxSocket(server.ws_url, token_for(RecipientFactory()), since=since) as socket:
        assert socket.close_code() == 4400


def test_silent_client_is_dropped_and_answering_client_is_kept(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    token = token_for(recipient)

    with (
        InboxSocket(server.ws_url, token, pong=False) as silent,
        InboxSocket(server.ws_url, token) as alive,
    ):
        code = None
        deadline = time.monotonic() + IDLE_SECONDS + 5 * PING_SECONDS + 5
        while code is None and time.monotonic() < deadline:
            alive.collect(0.2)  # answers its pings
            code = silent.close_code(timeout=0.2)  # reads, never answers
        alive.collect(IDLE_SECONDS)
        message = deliver(recipient, "still there")
        got = alive.receive_type("notification")

    assert code == 4408
    assert got["id"] == message.id


def open_sockets(server: AsgiServer) -> float:
    page = requests.get(f"{server.url}/metrics", timeout=10).text
    for line in page.splitlines():
        if line.startswith("notifier_websocket_connections "):
            return float(line.split()[1])
    raise AssertionError("notifier_websocket_connections is not on /metrics")


def test_open_connections_gauge_counts_authenticated_sockets(server: AsgiServer) -> None:
    before = open_sockets(server)
    recipient = RecipientFactory()

    with InboxSocket(server.ws_url, token_for(recipient)) as first:
        first.receive_type("unread_count")
        with InboxSocket(server.ws_url, token_for(recipient)) as second:
            second.receive_type("unread_count")
            with InboxSocket(server.ws_url, "garbage") as refused:
                assert refused.close_code() == 4401
            assert open_sockets(server) == before + 2
        wait_until(lambda: open_sockets(server) == before + 1, timeout=5, interval=0.1)

    wait_until(lambda: open_sockets(server) == before, timeout=5, interval=0.1)


def first_ping_after(server: AsgiServer, token: str) -> float:
    """Seconds from the socket's first message (its unread count) to the server's first ping."""
    with InboxSocket(server.ws_url, token) as socket:
        assert json.loads(socket.conn.recv(timeout=10))["type"] == "unread_count"
        opened = time.monotonic()
        while json.loads(socket.conn.recv(timeout=10))["type"] != "ping":
            pass
        return time.monotonic() - opened


def test_sockets_that_connect_together_are_not_pinged_together(server: AsgiServer) -> None:
    token = token_for(RecipientFactory())

    with ThreadPoolExecutor(max_workers=8) as pool:
        offsets = list(pool.map(lambda _: first_ping_after(server, token), range(8)))

    # Each socket's first ping comes a random part of the interval after it opened (without
    # the spread, all eight would come a whole interval after, within milliseconds).
    assert all(0 <= offset <= PING_SECONDS + 0.2 for offset in offsets)
    assert max(offsets) - min(offsets) > PING_SECONDS / 4, offsets
