"""The Python client (clients/python) over HTTP to a real web process, a real Celery worker
and the SendGrid simulator: an email sent through it reaches the simulator and reads `sent`."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from notifier_client import NotifierClient, SendOptions

from tests.support.asgi import AsgiServer
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]


def test_an_email_sent_through_the_client_is_sent_at_the_simulator(
    worker: Worker, sendgrid: Simulator, api_key: tuple[object, str], demo: dict[str, object]
) -> None:
    web = AsgiServer(name="pyclient")
    request: SendOptions = {
        "channels": ["email"],
        "variables": {"order_id": "A-7"},
        "idempotency_key": str(uuid.uuid4()),
    }
    try:
        with NotifierClient(web.url, api_key[1]) as client:
            accepted = client.send("order_shipped", recipient="user-1", **request)
            (delivery,) = accepted["deliveries"]

            def sent() -> dict[str, Any] | None:
                notification = client.get_notification(accepted["id"])
                return notification if notification["deliveries"][0]["status"] == "sent" else None

            detail = wait_until(sent, timeout=30)
            again = client.send("order_shipped", recipient="user-1", **request)
    finally:
        web.stop()

    assert accepted["status"] == "accepted"
    assert (delivery["recipient"], delivery["channel"]) == ("user-1", "email")
    assert [d["id"] for d in detail["deliveries"]] == [delivery["id"]]
    (mail,) = [r["body"] for r in sendgrid.requests()]
    assert mail["subject"] == "Order A-7 shipped"
    assert mail["custom_args"] == {"delivery_id": delivery["id"]}
    assert again == accepted  # the same key: the original answer, nothing sent twice
