"""RFC 8058 one-click unsubscribe through the real worker: the headers on what SendGrid and an
SMTP server receive, and a POST to the link stops the next email of that category."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from tests.support.processes import Simulator, Worker, wait_until
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.pipeline]
LINK = re.compile(r"<(http://testserver(/u/[^>]+))>")


def _send(api: APIClient, *, priority: str = "normal") -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
            "priority": priority,
        },
        format="json",
    )
    assert response.status_code == 202
    return str(response.json()["deliveries"][0]["id"])


def _sent(delivery_id: str) -> None:
    wait_until(
        lambda: Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.SENT).exists(),
        timeout=20,
    )


@pytest.fixture
def public_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {"PUBLIC_BASE_URL": "http://testserver"}


def test_sendgrid_mail_carries_the_headers_and_the_link_unsubscribes(
    worker_factory: Callable[..., Worker],
    public_env: dict[str, str],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, Any],
) -> None:
    worker_factory(env=public_env)

    # Given an `orders` email sent through SendGrid, and a critical one
    first = _send(api)
    critical = _send(api, priority="critical")
    _sent(first)
    _sent(critical)

    # Then the normal one carries RFC 8058's headers, the critical one none
    mails = {r["body"]["custom_args"]["delivery_id"]: r["body"] for r in sendgrid.requests()}
    headers = mails[first]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = LINK.fullmatch(headers["List-Unsubscribe"])
    assert match is not None
    assert "headers" not in mails[critical]
    for body in mails.values():  # SendGrid's own unsubscribe handling stays off
        assert body["tracking_settings"] == {"subscription_tracking": {"enable": False}}

    # When the mail provider POSTs to the link (twice: idempotent)
    for _ in range(2):
        answer = Client(enforce_csrf_checks=True).post(
            match[2], "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
        assert answer.status_code == 200

    # Then the next `orders` email is skipped at creation with the opt-out reason
    response = api.post(
        "/api/v1/notifications",
        {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-2"}},
        format="json",
    )
    email = next(d for d in response.json()["deliveries"] if d["channel"] == "email")
    assert (email["status"], email["reason"]) == ("skipped", "opted out of orders on email")
    assert len(sendgrid.requests()) == 2  # nothing more was sent


def test_smtp_mail_carries_the_headers(
    worker_factory: Callable[..., Worker],
    public_env: dict[str, str],
    smtp: SmtpServer,
    api: APIClient,
    demo: dict[str, Any],
) -> None:
    # Given SMTP as the only email provider
    worker_factory(
        env={
            **public_env,
            "SENDGRID_API_KEY": "",
            "SENDGRID_API_URL": "",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
        }
    )

    delivery_id = _send(api)
    _sent(delivery_id)

    (message,) = smtp.messages
    assert message["X-Delivery-Id"] == delivery_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unfolded = re.sub(r"\r?\n", "", str(message["List-Unsubscribe"])).strip()
    assert LINK.fullmatch(unfolded) is not None
