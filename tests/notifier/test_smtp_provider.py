"""The SMTP provider (Django's SMTP backend) against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from django.core.mail import get_connection

from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage
from notifier.providers.smtp import SmtpProvider
from tests.support.processes import free_port
from tests.support.smtp import SmtpServer

MESSAGE = OutboundMessage(
    delivery_id="d-1",
    channel="email",
    to="ada@example.com",
    subject="Order A-1 shipped",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


def provider(port: int) -> SmtpProvider:
    return SmtpProvider(
        connection_factory=lambda: get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host="127.0.0.1",
            port=port,
            timeout=5,
            fail_silently=False,
        ),
        from_email="notifications@example.com",
    )


def test_sends_text_and_html_with_the_delivery_id(smtp: SmtpServer) -> None:
    result = provider(smtp.port).send(MESSAGE)

    (message,) = smtp.messages
    assert message["X-Delivery-Id"] == "d-1"
    assert message["Message-ID"] == result.provider_message_id
    assert message["Subject"] == "Order A-1 shipped"
    assert message["From"] == "notifications@example.com"
    assert message["To"] == "ada@example.com"
    assert result.status_code == 250
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    assert parts == {"text/plain": "Hi Ada", "text/html": "<p>Hi Ada</p>"}


def test_a_5xx_refusal_is_permanent(smtp: SmtpServer) -> None:
    smtp.handler.refuse_with = "550 5.1.1 No such user"

    with pytest.raises(PermanentFailure) as caught:
        provider(smtp.port).send(MESSAGE)

    assert caught.value.status_code == 550
    assert smtp.messages == []


def test_a_4xx_refusal_is_transient(smtp: SmtpServer) -> None:
    smtp.handler.refuse_with = "451 4.3.0 Try again later"

    with pytest.raises(TransientFailure) as caught:
        provider(smtp.port).send(MESSAGE)

    assert caught.value.status_code == 451
    assert smtp.messages == []


def test_no_server_is_transient() -> None:
    with pytest.raises(TransientFailure, match="smtp connection error"):
        provider(free_port()).send(MESSAGE)


@pytest.mark.parametrize("subject", ["Order A-1\r\nBcc: eve@example.com", "Order\nA-1"])
def test_a_line_break_in_a_header_is_permanent_and_nothing_is_sent(
    smtp: SmtpServer, subject: str
) -> None:
    message = dataclasses.replace(MESSAGE, subject=subject)

    with pytest.raises(PermanentFailure, match="invalid mail header"):
        provider(smtp.port).send(message)

    assert smtp.messages == []


def test_mail_headers_reach_the_smtp_server(smtp: SmtpServer) -> None:
    # Given an email carrying RFC 8058's one-click unsubscribe headers, the link as long as a
    # signed token makes it (longer than a header line: folded, never encoded)
    link = "https://notify.example.com/u/" + "eyJyIjoiNmY0ZDk" * 8 + ":1tXyZ:abcdefghijk"
    headers = {
        "List-Unsubscribe": f"<{link}>, <mailto:leave@example.com>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    provider(smtp.port).send(dataclasses.replace(MESSAGE, headers=headers))

    # Then the server receives them as sent, once unfolded (RFC 5322: remove the line breaks)
    (message,) = smtp.messages
    unfolded = re.sub(r"\r?\n", "", str(message["List-Unsubscribe"])).strip()
    assert unfolded == headers["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Delivery-Id"] == "d-1"
