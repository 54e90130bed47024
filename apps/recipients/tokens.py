"""Recipient tokens: signed, expiring credentials a service mints for its end users' apps."""

from __future__ import annotations

import datetime as dt
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


def recipient_token_mint(*, recipient: Recipient, ttl_seconds: int | None = None) -> RecipientToken:
    """Sign (recipient id, expiry). The expiry travels in the token so each can have its own."""
    ttl = ttl_seconds or settings.RECIPIENT_TOKEN_TTL_SECONDS
    expires_at = timezone.now() + dt.timedelta(seconds=ttl)
    token = signing.dumps({"r": recipient.pk, "e": int(expires_at.timestamp())}, salt=SALT)
    return RecipientToken(token=token, expires_at=expires_at)


def recipient_token_verify(token: str) -> Recipient | None:
    """The recipient a valid, unexpired token names; None for anything else."""
    try:
        payload = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict):
        return None
    recipient_id, expires = payload.get("r"), payload.get("e")
    if not isinstance(recipient_id, int) or not isinstance(expires, int):
        return None
    if expires < timezone.now().timestamp():
        return None
    return (
        Recipient.objects.select_related("client")
        .filter(pk=recipient_id, erased_at__isnull=True)
        .first()
    )
