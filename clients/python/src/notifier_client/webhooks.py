"""Verifying the service's outbound webhooks (Standard Webhooks: `webhook-id`,
`webhook-timestamp`, `webhook-signature`), with the `standardwebhooks` package."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from standardwebhooks.webhooks import WebhookVerificationError as InvalidSignature

from notifier_client.errors import WebhookVerificationError

# One signature as the specification writes it: a version, a comma, standard base64.
_SIGNATURE = re.compile(r"^v[0-9]+,[A-Za-z0-9+/]+={0,2}$")


def verify_webhook(
    headers: Mapping[str, str], body: bytes | str, secret: str | Iterable[str]
) -> Any:
    """The event (parsed JSON) when `body` carries a valid signature for `secret` within the
    five minutes' tolerance; else WebhookVerificationError. Pass the raw body as received.
    A secret that is not a string (bytes, say) is a TypeError.

    `secret` is the endpoint's `whsec_...` secret, or several (while you rotate it: any one
    verifying is enough). `webhook-signature` may hold several space-separated signatures (as
    while the endpoint's secret is rotated); malformed entries among them are ignored."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if isinstance(secret, (bytes, bytearray)) or not all(isinstance(s, str) for s in secrets):
        # bytes would be iterated as ints; raw bytes or "whsec_..." encoded is ambiguous anyway.
        raise TypeError("secret must be the whsec_... string, or an iterable of such strings")
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    signatures = [s for s in lowered.get("webhook-signature", "").split() if _SIGNATURE.match(s)]
    if not signatures:
        raise WebhookVerificationError("no well-formed webhook-signature header")
    lowered["webhook-signature"] = " ".join(signatures)
    try:
        text = body.decode() if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise WebhookVerificationError("the body is not UTF-8") from exc
    if not secrets:
        raise WebhookVerificationError("no secret to verify with")
    failure: Exception | None = None
    for one in secrets:
        try:
            Webhook(one).verify(text, lowered, json_parse=False)
        except (
            InvalidSignature,
            EmptyWebhookSecretError,
            binascii.Error,
            ValueError,
        ) as exc:
            failure = exc
            continue
        try:
            return json.loads(text)
        except ValueError as exc:
            raise WebhookVerificationError("signed, but the body is not JSON") from exc
    raise WebhookVerificationError(str(failure)) from failure
