"""In-app end to end with several ASGI processes: API -> Celery worker -> inbox row -> Redis
channel layer -> sockets on two different uvicorn processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import Worker, wait_until
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.pipeline]


@pytest.fixture
def servers(worker: Worker) -> Iterator[tuple[AsgiServer, AsgiServer]]:
    first = AsgiServer(name="one")
    try:
        second = AsgiServer(name="two")
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def send_inapp(api: APIClient, recipient: str, order_id: str) -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": recipient,
            "template": "order_shipped",
            "variables": {"order_id": order_id},
            "channels": ["inapp"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return str(response.json()["deliveries"][0]["id"])


def test_a_message_reaches_sockets_on_either_server_and_is_read_once(
    servers: tuple[AsgiServer, AsgiServer], api: APIClient, demo: dict[str, object]
) -> None:
    first, second = servers
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    token = recipient_token_mint(recipient=recipient).token

    with (
        InboxSocket(first.ws_url, token) as on_first,
        InboxSocket(second.ws_url, token) as on_second,
    ):
        assert on_first.receive_type("unread_count")["count"] == 0
        assert on_second.receive_type("unread_count")["count"] == 0
        delivery_id = send_inapp(api, "user-1", "A-7")
        got_first = on_first.receive_type("notification", timeout=20)
        got_second = on_second.receive_type("notification", timeout=20)
        wait_until(
            lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENT).exists(),
            timeout=20,
        )
        read = requests.post(
            f"{second.url}/api/v1/inbox/{got_first['id']}/read",
            headers={"Authorization": f"Recipient {token}"},
            timeout=10,
        )
        count_first = on_first.receive_type("unread_count")
        count_second = on_second.receive_type("unread_count")

    message = InboxMessage.objects.get(delivery_id=delivery_id)
    assert got_first == got_second
    assert got_first["id"] == message.id
    assert (got_first["title"], got_first["body"]) == ("Shipped", "Order A-7")
    assert got_first["data"]["notification_id"] == str(message.delivery.notification_id)
    assert read.status_code == 200
    assert count_first["count"] == count_second["count"] == 0
    delivery = Delivery.objects.get(id=delivery_id)
    assert delivery.status == DeliveryStatus.READ
    assert delivery.provider == "inbox"
    assert [e.status for e in delivery.events.all()] == ["queued", "sent", "read"]


def test_each_recipient_gets_only_its_own_message_across_servers(
    servers: tuple[AsgiServer, AsgiServer], api: APIClient, demo: dict[str, object]
) -> None:
    first, second = servers
    alice = demo["recipient"]
    assert isinstance(alice, Recipient)
    bob = RecipientFactory(client=alice.client, external_id="user-2")

    with (
        InboxSocket(first.ws_url, recipient_token_mint(recipient=alice).token) as alice_socket,
        InboxSocket(second.ws_url, recipient_token_mint(recipient=bob).token) as bob_socket,
    ):
        alice_socket.receive_type("unread_count")
        bob_socket.receive_type("unread_count")
        send_inapp(api, "user-2", "B-1")
        send_inapp(api, "user-1", "A-1")
        bob_got = bob_socket.receive_type("notification", timeout=20)
        alice_got = alice_socket.receive_type("notification", timeout=20)
        alice_more = alice_socket.collect(1.0)
        bob_more = bob_socket.collect(0.2)

    assert bob_got["body"] == "Order B-1"
    assert alice_got["body"] == "Order A-1"
    assert [m for m in alice_more + bob_more if m["type"] == "notification"] == []
