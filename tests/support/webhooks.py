"""Signing webhook requests as the providers do: SendGrid's ECDSA event webhook signature and
Twilio's X-Twilio-Signature, with a fresh key pair / auth token per test."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from twilio.request_validator import RequestValidator

SENDGRID_URL = "/webhooks/sendgrid"
TWILIO_URL = "/webhooks/twilio/status"
TWILIO_TOKEN = "twilio-test-auth-token"


class SendGridSigner:
    """Holds an EC P-256 key pair; `public_key` is what SendGrid shows as the verification key."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: str, timestamp: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        signature = self.private_key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
        return {
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp,
        }

    def post(self, client: Client, events: list[dict[str, Any]], **headers: str) -> Any:
        payload = json.dumps(events)
        signed = {**self.headers(payload), **headers}
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
