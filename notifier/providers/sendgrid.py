"""Email through SendGrid's official SDK (`sendgrid`), its errors classified here."""

from __future__ import annotations

import urllib.error

import python_http_client.exceptions as sg_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from notifier.errors import PermanentFailure, TransientFailure, parse_retry_after
from notifier.providers.base import OutboundMessage, SendResult

DEFAULT_HOST = "https://api.sendgrid.com"


class SendGridProvider:
    name = "sendgrid"

    def __init__(
        self, *, api_key: str, from_email: str, host: str = "", timeout: float = 10.0
    ) -> None:
        self._client = SendGridAPIClient(api_key, host=host or DEFAULT_HOST)
        # The SDK builds its HTTP client at init; the timeout is read per request from it.
        self._client.client.timeout = timeout
        self._from_email = from_email

    def build(self, message: OutboundMessage) -> Mail:
        mail = Mail(
            from_email=self._from_email,
            to_emails=message.to,
            subject=message.subject,
            plain_text_content=message.body,
            html_content=message.html or None,
        )
        # Echoed back in event webhooks: ties an event to its delivery.
        mail.custom_arg = CustomArg("delivery_id", message.delivery_id)
        return mail

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            response = self._client.send(self.build(message))
        except sg_errors.HTTPError as exc:
            raise classify_http_error(exc) from exc
        except TimeoutError as exc:
            raise TransientFailure("timeout", detail=str(exc)) from exc
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            raise TransientFailure("connection error", detail=str(exc)) from exc
        headers = response.headers
        message_id = (headers.get("X-Message-Id") if headers else None) or ""
        return SendResult(provider_message_id=message_id, status_code=response.status_code)


def classify_http_error(exc: sg_errors.HTTPError) -> TransientFailure | PermanentFailure:
    status = int(exc.status_code)
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    if status == 429 or status >= 500:
        headers = exc.headers
        retry_after = parse_retry_after(headers.get("Retry-After") if headers else None)
        return TransientFailure(
            f"sendgrid {status}", retry_after=retry_after, status_code=status, detail=body[:500]
        )
    if status in (401, 403):
        # Our credentials, not the message: keep it for a replay once fixed.
        return PermanentFailure(f"sendgrid rejected credentials ({status})", status_code=status)
    return PermanentFailure(f"sendgrid {status}", status_code=status, detail=body[:500])
