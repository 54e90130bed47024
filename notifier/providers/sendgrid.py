"""Email through SendGrid's official SDK (`sendgrid`), its errors classified here.

The SDK's transport (python_http_client) opens a new connection for every request (urllib,
no keep-alive: a TCP and TLS handshake per email). `PooledClient` keeps the SDK's client, its
request building and its error classes, and only makes the request itself over a urllib3 pool
of keep-alive connections, sized to the calls the process keeps in flight.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import python_http_client
import python_http_client.exceptions as sg_errors
import urllib3
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    CustomArg,
    Header,
    Mail,
    SubscriptionTracking,
    TrackingSettings,
)

from notifier.errors import PermanentFailure, TransientFailure, parse_retry_after
from notifier.providers.base import OutboundMessage, SendResult

DEFAULT_HOST = "https://api.sendgrid.com"


class _Answer:
    """A urllib3 response as python_http_client's Response reads one (getcode, read, info)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def getcode(self) -> int:
        return int(self._response.status)

    def read(self) -> bytes:
        return bytes(self._response.data)

    def info(self) -> Any:
        return self._response.headers


class PooledClient(python_http_client.Client):  # type: ignore[misc]  # untyped SDK base
    """python_http_client's Client, its requests made over a shared keep-alive pool."""

    def __init__(self, *args: Any, pool: urllib3.PoolManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pool

    def _build_client(self, name: str | None = None) -> PooledClient:
        url_path = [*self._url_path, name] if name else self._url_path
        return PooledClient(
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
            pool=self._pool,
        )

    def _make_request(
        self, opener: Any, request: urllib.request.Request, timeout: float | None = None
    ) -> _Answer:
        response = self._pool.request(
            request.get_method(),
            request.full_url,
            body=request.data,  # type: ignore[arg-type]  # bytes or None, as the SDK built it
            headers=dict(request.header_items()),
            timeout=timeout or self.timeout,
            retries=False,  # no transport-level retries; the retry policy lives in one place
            redirect=False,
        )
        if response.status >= 300:  # the SDK's own error classes, as urllib would have raised
            raise sg_errors.handle_error(
                urllib.error.HTTPError(
                    request.full_url,
                    response.status,
                    response.reason or "",
                    response.headers,  # type: ignore[arg-type]  # a mapping, read with .get
                    io.BytesIO(response.data),
                )
            )
        return _Answer(response)


def _pool_for(host: str, *, connections: int) -> urllib3.PoolManager:
    """Keep-alive connections to `host`, through the proxy the environment names for it (as
    urllib's opener did: HTTPS_PROXY / HTTP_PROXY, NO_PROXY)."""
    parts = urllib.parse.urlsplit(host)
    proxy = urllib.request.getproxies().get(parts.scheme)
    size = max(connections, 1)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy, maxsize=size, block=False)
    return urllib3.PoolManager(maxsize=size, block=False)


class SendGridProvider:
    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        host: str = "",
        timeout: float = 10.0,
        connections: int = 10,
    ) -> None:
        self._client = SendGridAPIClient(api_key, host=host or DEFAULT_HOST)
        sdk = self._client.client
        self._client.client = PooledClient(
            host=sdk.host,
            request_headers=sdk.request_headers,
            version=sdk._version,
            timeout=timeout,  # read per request
            pool=_pool_for(host or DEFAULT_HOST, connections=connections),
        )
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
        for name, value in message.headers.items():  # the SDK's setter appends one header
            mail.header = Header(name, value)
        # Whatever the account says: SendGrid's Subscription Tracking would add its own
        # unsubscribe link and list (critical mail included) that our preferences never see.
        tracking = TrackingSettings()
        tracking.subscription_tracking = SubscriptionTracking(enable=False)
        mail.tracking_settings = tracking
        return mail

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            response = self._client.send(self.build(message))
        except sg_errors.HTTPError as exc:
            raise classify_http_error(exc) from exc
        except urllib3.exceptions.NewConnectionError as exc:  # refused (a ConnectTimeoutError)
            raise TransientFailure("connection error", detail=str(exc)) from exc
        except (TimeoutError, urllib3.exceptions.TimeoutError) as exc:
            raise TransientFailure("timeout", detail=str(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:  # connection refused, reset, protocol
            raise TransientFailure("connection error", detail=str(exc)) from exc
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
