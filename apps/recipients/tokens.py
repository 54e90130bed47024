"""Recipient tokens: signed, expiring credentials a service mints for its end users' apps.

A token names the recipient by its random `public_id`, never by the sequential primary key:
should a signing key leak, tokens still cannot be made for recipients by counting. Tokens
minted before carried the primary key; they no longer verify (the app asks for a new one).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone

from apps.recipients.models import Recipient

SALT = "notifier.recipient-token"


@dataclass(frozen=True)
class RecipientToken:
    token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class VerifiedToken:
    """A valid token's recipient and the moment the token stops being valid."""

    recipient: Recipient
    expires_at: dt.datetime


def recipient_token_mint(*, recipient: Recipient, ttl_seconds: int | None = None) -> RecipientToken:
    """Sign (recipient public id, expiry). The expiry travels in the token so each can have its
    own."""
    ttl = ttl_seconds or settings.RECIPIENT_TOKEN_TTL_SECONDS
    expires_at = timezone.now() + dt.timedelta(seconds=ttl)
    token = signing.dumps(
        {"r": recipient.public_id.hex, "e": int(expires_at.timestamp())}, salt=SALT
    )
    return RecipientToken(token=token, expires_at=expires_at)


def recipient_token_check(token: str) -> VerifiedToken | None:
    """The recipient a valid, unexpired token names, with the token's expiry; None for
    anything else (bad signature, expired, an old-style token, an erased recipient)."""
    try:
        payload = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict):
        return None
    public_id, expires = payload.get("r"), payload.get("e")
    if not isinstance(public_id, str) or not isinstance(expires, int):
        return None
    try:
        parsed = uuid.UUID(hex=public_id)
    except ValueError:
        return None
    now = timezone.now()
    if expires < now.timestamp():
        return None
    recipient = (
        Recipient.objects.select_related("client")
        .filter(public_id=parsed, erased_at__isnull=True)
        .first()
    )
    if recipient is None:
        return None
    return VerifiedToken(
        recipient=recipient, expires_at=dt.datetime.fromtimestamp(expires, tz=dt.UTC)
    )


def recipient_token_verify(token: str) -> Recipient | None:
    """The recipient a valid, unexpired token names; None for anything else."""
    checked = recipient_token_check(token)
    return checked.recipient if checked is not None else None
