"""Twilio's Programmable Messaging API (2010-04-01 Messages.json), as the `twilio` SDK speaks it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import urllib.parse
import urllib.request
import uuid
from typing import Any

from twilio.request_validator import RequestValidator

from simulators.core import Provider, Reply

logger = logging.getLogger(__name__)

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio's own codes for the errors the simulator injects.
STATUS_CODES = {429: 20429, 500: 20500, 503: 20503}


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TwilioSimulator(Provider):
    """With TWILIO_SIM_STATUS_CALLBACKS=1 and TWILIO_AUTH_TOKEN set, it also calls each accepted
    message's StatusCallback like Twilio does (`sent`, then `delivered`), signed with the token."""

    name = "twilio"

    def __init__(self, *, auth_token: str | None = None, callbacks: bool | None = None) -> None:
        self.auth_token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
        enabled = os.environ.get("TWILIO_SIM_STATUS_CALLBACKS") == "1"
        self.callbacks = (enabled if callbacks is None else callbacks) and bool(self.auth_token)

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        match = MESSAGES_PATH.match(path)
        if method != "POST" or match is None:
            return Reply(404, twilio_error(404, 20404, "The requested resource was not found"))
        if not headers.get("authorization", "").startswith("Basic "):
            return Reply(401, twilio_error(401, 20003, "Authenticate"))
        form = body if isinstance(body, dict) else {}
        to = str(form.get("To", ""))
        if not to:
            return Reply(400, twilio_error(400, 21604, "A 'To' phone number is required."))
        if not E164.match(to):
            return self.invalid(path, body)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return Reply(400, twilio_error(400, 21603, "A 'From' phone number is required."))
        if not form.get("Body"):
            return Reply(400, twilio_error(400, 21602, "Message body is required."))
        now = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        sid = f"SM{uuid.uuid4().hex}"
        account = match.group("sid")
        return Reply(
            201,
            {
                "sid": sid,
                "account_sid": account,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
                "subresource_uris": {},
            },
        )

    def invalid(self, path: str, body: Any) -> Reply:
        to = body.get("To", "") if isinstance(body, dict) else ""
        return Reply(
            400, twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        )

    def error(self, status: int, retry_after: float | None) -> Reply:
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        code = STATUS_CODES.get(status, 20000 + status)
        return Reply(status, twilio_error(status, code, f"Simulated {status}"), headers)

    def key(self, path: str, body: Any) -> str:
        """The delivery id, carried in the status callback URL's query."""
        if not isinstance(body, dict):
            return ""
        query = urllib.parse.urlsplit(str(body.get("StatusCallback", ""))).query
        return urllib.parse.parse_qs(query).get("delivery_id", [""])[0]

    async def after(self, path: str, body: Any, reply: Reply) -> None:
        if not (self.callbacks and reply.status == 201 and isinstance(body, dict)):
            return
        callback = str(body.get("StatusCallback", ""))
        if not callback.startswith(("http://", "https://")):
            return
        # Like Twilio, well after the API answered (a report racing the sender's own commit
        # would find the delivery still `sending` and be ignored).
        for status, delay in (("sent", 0.5), ("delivered", 1.0)):
            await asyncio.sleep(delay)
            params = {
                "MessageSid": str(reply.body["sid"]),
                "MessageStatus": status,
                "To": str(body.get("To", "")),
                "From": str(body.get("From", "")),
                "AccountSid": str(reply.body["account_sid"]),
                "ApiVersion": "2010-04-01",
            }
            await asyncio.to_thread(self._post, callback, params)

    def _post(self, url: str, params: dict[str, str]) -> None:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        request = urllib.request.Request(  # noqa: S310 - the URL the client gave us
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                pass
        except OSError as exc:  # like Twilio: a failed callback is logged, not retried
            logger.warning("status callback to %s failed: %s", url, exc)
