"""SMS through Twilio's official SDK (`twilio`), its errors classified here.

The SDK's exceptions carry no response headers, so the HTTP client below keeps the last
response's headers (per thread: one provider serves a thread pool) to honour Retry-After.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notifier.errors import PermanentFailure, TransientFailure, parse_retry_after
from notifier.providers.base import OutboundMessage, SendResult

TWILIO_HOST = "https://api.twilio.com"

# Twilio error codes that say the number itself is unusable (not our account, not a blip).
INVALID_NUMBER_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' number cannot be reached
        21408,  # permission to send to this region not enabled
        21610,  # recipient replied STOP (unsubscribed)
        21612,  # 'To' number not reachable via this 'From'
        21614,  # 'To' number is not a valid mobile number
    }
)


class HeaderKeepingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # untyped SDK base
    """Twilio's HTTP client, pointed at `base_url` and remembering the last response headers."""

    def __init__(self, *, base_url: str = "", timeout: float = 10.0, connections: int = 10) -> None:
        # max_retries=0: no transport-level retries; the retry policy lives in one place.
        super().__init__(timeout=timeout, max_retries=0)
        # Keep-alive connections for as many calls as may be in flight at once (requests keeps
        # 10 per host by default and drops the rest after each call).
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(connections, 1), max_retries=0)
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, adapter)
        self._base_url = base_url.rstrip("/")
        self._local = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._base_url:
            parts = urllib.parse.urlsplit(url)
            url = self._base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        self._local.headers = {}
        response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._local.headers = dict(response.headers or {})
        return response

    def last_headers(self) -> dict[str, str]:
        """Headers of the last response this thread received."""
        return dict(getattr(self._local, "headers", {}))


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = "",
        status_callback: str = "",
        timeout: float = 10.0,
        connections: int = 10,
    ) -> None:
        self.http_client = HeaderKeepingHttpClient(
            base_url=base_url, timeout=timeout, connections=connections
        )
        self._client = Client(account_sid, auth_token, http_client=self.http_client)
        self._from = from_number
        self._status_callback = status_callback

    def callback_url(self, delivery_id: str) -> str | None:
        """The status callback for one delivery: `?delivery_id=` ties Twilio's reports to it."""
        if not self._status_callback:
            return None
        joiner = "&" if "?" in self._status_callback else "?"
        query = urllib.parse.urlencode({"delivery_id": delivery_id})
        return f"{self._status_callback}{joiner}{query}"

    def send(self, message: OutboundMessage) -> SendResult:
        kwargs: dict[str, Any] = {"to": message.to, "body": message.body}
        if self._from.startswith("MG"):
            kwargs["messaging_service_sid"] = self._from
        else:
            kwargs["from_"] = self._from
        callback = self.callback_url(message.delivery_id)
        if callback:
            kwargs["status_callback"] = callback
        try:
            created = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise classify_rest_error(exc, self.http_client.last_headers()) from exc
        except requests.Timeout as exc:
            raise TransientFailure("timeout", detail=str(exc)) from exc
        except (requests.ConnectionError, ConnectionError, OSError) as exc:
            raise TransientFailure("connection error", detail=str(exc)) from exc
        except TwilioException as exc:  # e.g. an unreadable answer
            raise TransientFailure("twilio error", detail=str(exc)[:500]) from exc
        return SendResult(provider_message_id=str(created.sid or ""), status_code=201)


def classify_rest_error(
    exc: TwilioRestException, headers: dict[str, str]
) -> TransientFailure | PermanentFailure:
    """Twilio's error answer as a transient (429, 5xx) or permanent (other 4xx) failure."""
    status = int(exc.status)
    detail = f"code {exc.code}: {exc.msg}"[:500] if exc.code else str(exc.msg)[:500]
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        return TransientFailure(
            f"twilio {status}", retry_after=retry_after, status_code=status, detail=detail
        )
    if exc.code in INVALID_NUMBER_CODES:
        return PermanentFailure(
            f"twilio invalid number ({exc.code})", status_code=status, detail=detail
        )
    if status in (401, 403):
        return PermanentFailure(f"twilio rejected credentials ({status})", status_code=status)
    code = f" ({exc.code})" if exc.code else ""
    return PermanentFailure(f"twilio {status}{code}", status_code=status, detail=detail)


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
