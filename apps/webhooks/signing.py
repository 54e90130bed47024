"""Standard Webhooks signatures (the `standardwebhooks` library signs; this module only picks
the secrets): `webhook-id`, `webhook-timestamp`, `webhook-signature`. During a rotation's
overlap the message carries two signatures, the new secret's and the old one's, space-separated
as the specification allows, so a receiver still holding the old secret keeps verifying."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def secret_new() -> str:
    """A fresh signing secret in the specification's form (`whsec_` + base64 of 32 bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(
    *, secret: str, previous: str, previous_expires_at: dt.datetime | None, now: dt.datetime
) -> list[str]:
    """The secrets that sign a message sent at `now`: the current one, and the previous one
    until its overlap ends."""
    if previous and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]


def signed_headers(
    *, event_id: str, body: str, secrets_: list[str], now: dt.datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as `event_id` at `now`."""
    at = now.astimezone(dt.UTC)
    signatures = [Webhook(s).sign(msg_id=event_id, timestamp=at, data=body) for s in secrets_]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
