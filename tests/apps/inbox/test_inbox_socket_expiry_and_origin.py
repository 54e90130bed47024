"""A socket lives no longer than its token, and only allowed Origins may open one (real uvicorn,
PostgreSQL and the Redis channel layer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from apps.inbox.models import InboxMessage
from apps.inbox.services import inbox_message_deliver
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import DeliveryFactory, RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]

APP_ORIGIN = "https://app.example"
TOKEN_SECONDS = 3


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[AsgiServer]:
    proc = AsgiServer(
        env={
            "INBOX_PING_SECONDS": "0.5",
            "INBOX_IDLE_SECONDS": "30",
            "WEBSOCKET_ALLOWED_ORIGINS": f"{APP_ORIGIN},http://127.0.0.1",
        },
        name="inbox-expiry",
    )
    yield proc
    proc.stop()


def deliver(recipient: Recipient, title: str) -> InboxMessage:
    delivery = DeliveryFactory(
        recipient=recipient, notification__client=recipient.client, channel="inapp"
    )
    return inbox_message_deliver(
        delivery_id=str(delivery.id), recipient_id=recipient.pk, title=title, body=title, data={}
    )


def until_closed(socket: InboxSocket, timeout: float) -> tuple[list[dict[str, Any]], int | None]:
    """What arrives until the server closes the socket (pings answered), and its close code."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            received.append(socket.receive(timeout=max(0.01, deadline - time.monotonic())))
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else None


def start_refusal(env: dict[str, str]) -> str | None:
    """Why the ASGI server would not start with `env` (None: it started)."""
    try:
        proc = AsgiServer(env=env, name="inbox-origin-config")
    except RuntimeError as exited:
        return str(exited)
    proc.stop()
    return None


def test_the_socket_is_closed_with_4401_when_its_token_expires(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    minted = recipient_token_mint(recipient=recipient, ttl_seconds=TOKEN_SECONDS)

    with InboxSocket(server.ws_url, minted.token) as socket:
        socket.receive_type("unread_count")
        before = deliver(recipient, "before expiry")
        assert socket.receive_type("notification")["id"] == before.id
        received, code = until_closed(socket, timeout=TOKEN_SECONDS + 5)
        closed_at = time.time()

    assert code == 4401
    assert received == []
    # Not before the token's expiry (a whole second: tokens carry it in seconds), not long after.
    expires = int(minted.expires_at.timestamp())
    assert expires - 0.2 <= closed_at <= expires + 2


def test_a_token_that_expires_later_keeps_the_socket(server: AsgiServer) -> None:
    recipient = RecipientFactory()
    token = recipient_token_mint(recipient=recipient, ttl_seconds=3600).token

    with InboxSocket(server.ws_url, token) as socket:
        socket.receive_type("unread_count")
        socket.collect(TOKEN_SECONDS + 1)
        message = deliver(recipient, "still open")
        got = socket.receive_type("notification")

    assert got["id"] == message.id


def test_a_configured_origin_is_accepted(server: AsgiServer) -> None:
    token = recipient_token_mint(recipient=RecipientFactory()).token

    with connect(
        f"{server.ws_url}/ws/inbox?token={token}", origin=Origin(APP_ORIGIN), proxy=None
    ) as conn:
        first = conn.recv(timeout=10)

    assert '"unread_count"' in str(first)


def test_a_native_client_without_an_origin_is_accepted(server: AsgiServer) -> None:
    # Mobile WebSocket clients often send no Origin; browsers always do, so a foreign page is
    # still refused (below).
    token = recipient_token_mint(recipient=RecipientFactory()).token

    with connect(f"{server.ws_url}/ws/inbox?token={token}", proxy=None) as conn:
        first = conn.recv(timeout=10)

    assert '"unread_count"' in str(first)


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "https://app.example.evil.example", "http://localhost"]
)
def test_an_origin_not_configured_is_refused(server: AsgiServer, origin: str) -> None:
    token = recipient_token_mint(recipient=RecipientFactory()).token

    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"{server.ws_url}/ws/inbox?token={token}", origin=Origin(origin), proxy=None),
    ):
        pass

    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_ALLOWED_HOSTS": "*"},
        {"WEBSOCKET_ALLOWED_ORIGINS": "*"},
        {"DJANGO_ALLOWED_HOSTS": "*", "WEBSOCKET_ALLOWED_ORIGINS": "https://app.example,*"},
    ],
)
def test_any_origin_outside_development_refuses_to_start(
    django_db_setup: None, env: dict[str, str]
) -> None:
    refusal = start_refusal({"DJANGO_DEBUG": "false", **env})

    assert refusal is not None, "the server started with any origin allowed"
    assert "allows any origin to open the inbox WebSocket" in refusal


def test_a_wildcard_host_with_listed_origins_starts(django_db_setup: None) -> None:
    proc = AsgiServer(
        env={"DJANGO_ALLOWED_HOSTS": "*", "WEBSOCKET_ALLOWED_ORIGINS": APP_ORIGIN},
        name="inbox-listed-origins",
    )
    try:
        token = recipient_token_mint(recipient=RecipientFactory()).token
        with (
            pytest.raises(InvalidStatus),
            connect(
                f"{proc.ws_url}/ws/inbox?token={token}",
                origin=Origin("http://evil.example"),
                proxy=None,
            ),
        ):
            pass
    finally:
        proc.stop()
