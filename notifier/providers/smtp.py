"""Email through any SMTP server with Django's mail API (`django.core.mail`).

The caller passes a connection factory (an SMTP `EmailBackend` with its host, port,
credentials and timeout), so this module reads no settings. One connection per send: workers
run sends on many threads, and a shared SMTP session is not thread-safe.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Callable
from typing import Any

from django.core.mail import BadHeaderError, EmailMultiAlternatives

from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage, SendResult

# Header that ties a message to its delivery (as SendGrid's custom arg does).
DELIVERY_HEADER = "X-Delivery-Id"


class SmtpProvider:
    name = "smtp"

    def __init__(self, *, connection_factory: Callable[[], Any], from_email: str) -> None:
        self._connection_factory = connection_factory
        self._from_email = from_email

    def build(self, message: OutboundMessage, connection: Any) -> EmailMultiAlternatives:
        message_id = f"<{uuid.uuid4().hex}@notifier>"
        mail = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=self._from_email,
            to=[message.to],
            connection=connection,
            headers={
                **message.headers,
                DELIVERY_HEADER: message.delivery_id,
                "Message-ID": message_id,
            },
        )
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        return mail

    def send(self, message: OutboundMessage) -> SendResult:
        connection = self._connection_factory()
        mail = self.build(message, connection)
        try:
            connection.open()
            try:
                sent = connection.send_messages([mail])
            finally:
                connection.close()
        except BadHeaderError as exc:
            # A CR or LF in a header (subject, address): the same message fails every time.
            raise PermanentFailure("invalid mail header", detail=str(exc)[:500]) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _classify(codes[0] if codes else 550, str(exc.recipients)) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(
                f"smtp rejected credentials ({exc.smtp_code})", status_code=exc.smtp_code
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, _text(exc.smtp_error)) from exc
        except TimeoutError as exc:
            raise TransientFailure("smtp timeout", detail=str(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnected, refused, unreachable: the server, not the message.
            raise TransientFailure("smtp connection error", detail=str(exc)) from exc
        if not sent:
            raise TransientFailure("smtp server accepted nothing")
        return SendResult(
            provider_message_id=str(mail.extra_headers["Message-ID"]), status_code=250
        )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(code: int, detail: str) -> TransientFailure | PermanentFailure:
    """4xx replies are temporary by the SMTP standard; 5xx are final."""
    if 400 <= code < 500:
        return TransientFailure(f"smtp {code}", status_code=code, detail=detail[:500])
    return PermanentFailure(f"smtp {code}", status_code=code, detail=detail[:500])
