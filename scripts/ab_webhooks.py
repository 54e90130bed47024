"""The provider's part in `python -m scripts.ab_example`: SendGrid's signed event webhooks for
the deliveries the service sent, and which of them are opened and clicked (seeded, so every run
picks the same ones). No network and no Django here: scripts/ab_example.py posts what this
builds, and tests/scripts/test_ab_webhooks.py checks it against the service's verifier."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# The headers SendGrid signs its event webhook with (sendgrid.helpers.eventwebhook).
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class EventSigner:
    """An ECDSA P-256 key pair, as SendGrid holds one for a signed event webhook: `public_key`
    (base64 DER) is what its settings page shows and SENDGRID_WEBHOOK_PUBLIC_KEY takes."""

    def __init__(self) -> None:
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: bytes, timestamp: int | None = None) -> dict[str, str]:
        """SendGrid's signature: ECDSA-SHA256 over the timestamp followed by the raw body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp).encode()
        signature = self._private_key.sign(stamp + payload, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: stamp.decode(),
        }


@dataclass(frozen=True)
class Sent:
    """One delivery as `GET /api/v1/notifications/{id}` shows it once sent."""

    id: str
    recipient: str
    email: str
    variant: str
    provider_message_id: str


def sendgrid_event(kind: str, sent: Sent, *, at: int) -> dict[str, Any]:
    """One event as SendGrid posts it: `sg_message_id` is the X-Message-Id its send answered
    with, plus a filter suffix; the mail's custom args (`delivery_id`) come back as top-level
    fields."""
    event: dict[str, Any] = {
        "email": sent.email,
        "timestamp": at,
        "event": kind,
        "sg_event_id": f"{kind}-{sent.id}",
        "sg_message_id": f"{sent.provider_message_id}.filterdrecv-7d9f-1-0",
        "delivery_id": sent.id,
    }
    if kind == "click":
        event["url"] = "https://example.com/start"
    return event


def payload(events: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps(list(events), separators=(",", ":")).encode()


def engagement(
    sent: Sequence[Sent],
    *,
    open_share: Mapping[str, float],
    click_share: Mapping[str, float],
    seed: int,
) -> dict[str, list[Sent]]:
    """Who opens and who clicks: per label, round(share x its sent) of its deliveries, drawn
    with `seed` from the deliveries in recipient order (the same run, the same picks); the
    clickers are drawn from the openers (a click follows an open)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    opened: list[Sent] = []
    clicked: list[Sent] = []
    for label in sorted(open_share):
        arm = sorted((s for s in sent if s.variant == label), key=_by_recipient)
        openers = sorted(rng.sample(arm, round(open_share[label] * len(arm))), key=_by_recipient)
        clicks = round(click_share.get(label, 0.0) * len(arm))
        if clicks > len(openers):
            raise ValueError(f"{label}: more clicks ({clicks}) than opens ({len(openers)})")
        opened += openers
        clicked += sorted(rng.sample(openers, clicks), key=_by_recipient)
    return {"delivered": list(sent), "open": opened, "click": clicked}


def _by_recipient(sent: Sent) -> str:
    return sent.recipient
