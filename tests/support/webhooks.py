"""Signing webhook requests as the providers do: SendGrid's ECDSA event webhook signature and
Twilio's X-Twilio-Signature, with a fresh key pair / auth token per test."""

from __future__ import annotations

import json
import time
from typing import Any

from django.test import Client
from twilio.request_validator import RequestValidator

from scripts.ab_webhooks import EventSigner

SENDGRID_URL = "/webhooks/sendgrid"
TWILIO_URL = "/webhooks/twilio/status"
TWILIO_TOKEN = "twilio-test-auth-token"


class SendGridSigner:
    """A fresh EC P-256 key pair; `public_key` is what SendGrid shows as the verification key.
    The signing is scripts/ab_webhooks.py's EventSigner (one implementation for the tests and
    scripts.ab_example), its headers given here as the Django test client takes them."""

    def __init__(self) -> None:
        self._signer = EventSigner()
        self.public_key = self._signer.public_key

    def headers(self, payload: str, timestamp: str | None = None) -> dict[str, str]:
        stamp = None if timestamp is None else int(timestamp)
        signed = self._signer.headers(payload.encode(), timestamp=stamp)
        return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in signed.items()}

    def post(self, client: Client, events: list[dict[str, Any]], **headers: str) -> Any:
        payload = json.dumps(events)
        signed: dict[str, Any] = {**self.headers(payload), **headers}  # request.META keys
        return client.post(SENDGRID_URL, payload, content_type="application/json", **signed)


def sendgrid_event(kind: str, delivery_id: str, email: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": f"evt-{kind}",
        "sg_message_id": "msg-1.filter0001",
        "delivery_id": delivery_id,
        **extra,
    }


def twilio_post(
    client: Client, params: dict[str, str], *, delivery_id: str, token: str = TWILIO_TOKEN
) -> Any:
    """POST a status callback signed like Twilio signs it (URL with query + sorted form)."""
    url = f"{TWILIO_URL}?delivery_id={delivery_id}"
    signature = RequestValidator(token).compute_signature(f"http://testserver{url}", params)
    return client.post(url, params, HTTP_X_TWILIO_SIGNATURE=signature)
