"""Messages the channel layer drops are not lost: live messages name the recipient's previous
message and the heartbeat names the newest, so a client can tell it missed something.

channels-redis drops, without a word, a group message for a socket whose channel is at its
capacity (or past its expiry). The capacity is checked by the sender: this test process
publishes with capacity 0, i.e. every live message is dropped, against a real uvicorn process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from copy import deepcopy
from typing import Any

import pytest

from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_deliver
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import DeliveryFactory, RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

PING_SECONDS = 0.5


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(env={"INBOX_PING_SECONDS": str(PING_SECONDS)}, name="inbox-gaps")
    yield proc
    proc.stop()


def set_capacity(settings: Any, capacity: int) -> None:
    layers = deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["capacity"] = capacity
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layer on setting_changed


def deliver(recipient: Recipient, title: str) -> InboxMessage:
    delivery = DeliveryFactory(
        recipient=recipient, notification__client=recipient.client, channel="inapp"
    )
    return inbox_message_deliver(
        delivery_id=str(delivery.id), recipient_id=recipient.pk, title=title, body=title, data={}
    )


def next_ping(socket: InboxSocket, timeout: float = 5.0) -> tuple[dict[str, Any], list[str]]:
    """The next ping, and the types of the other messages that came before it."""
    others: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(socket.conn.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "ping":
            socket.conn.send(json.dumps({"type": "pong"}))
            return message, others
        others.append(message["type"])


def test_heartbeat_names_the_newest_message_the_layer_dropped(
    server: AsgiServer, settings: Any
) -> None:
    recipient = RecipientFactory()
    token = recipient_token_mint(recipient=recipient).token
    with InboxSocket(server.ws_url, token) as socket:
        socket.receive_type("unread_count")
        empty, _ = next_ping(socket)
        assert empty["latest_id"] is None

        set_capacity(settings, 0)  # the layer drops every live message
        dropped = [deliver(recipient, "one"), deliver(recipient, "two")]
        ping, others = next_ping(socket)
        if ping["latest_id"] is None:  # a ping already on its way when the message was stored
            ping, more = next_ping(socket)
            others += more

    assert "notification" not in others  # dropped indeed: only the heartbeat tells
    assert ping["latest_id"] == dropped[-1].id


def test_live_message_names_the_recipients_previous_message(
    server: AsgiServer, settings: Any
) -> None:
    recipient = RecipientFactory()
    other = RecipientFactory(client=recipient.client)
    token = recipient_token_mint(recipient=recipient).token
    with InboxSocket(server.ws_url, token) as socket:
        socket.receive_type("unread_count")
        first = deliver(recipient, "first")
        assert socket.receive_type("notification")["prev_id"] is None

        set_capacity(settings, 0)
        dropped = deliver(recipient, "dropped")
        deliver(other, "someone else's")  # ids are global: a recipient's ids have holes
        set_capacity(settings, 100)
        after = deliver(recipient, "after")
        received = socket.receive_type("notification")

    assert first.id < dropped.id < after.id
    assert (received["id"], received["prev_id"]) == (after.id, dropped.id)
