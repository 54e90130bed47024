"""Signed links to the unsubscribe page and the preference centre.

A link names the recipient by its random `public_id` (never the sequential primary key nor the
client's external id), and an unsubscribe link also the category and channel it leaves: one
link cannot be edited into another (the signature covers all three). Unsubscribe links do not
expire unless UNSUBSCRIBE_LINK_MAX_AGE_SECONDS says so: an email read months later must still let
its reader leave. Preference links open the whole profile and expire after
PREFERENCES_LINK_MAX_AGE_SECONDS. Each kind of link has its own salt, so a preference link is
no unsubscribe link and no recipient token (apps/recipients/tokens.py) is either.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

from apps.recipients.models import Recipient

UNSUBSCRIBE_SALT = "notifier.unsubscribe-link"
PREFERENCES_SALT = "notifier.preferences-link"
# RFC 8058: the body a mail provider POSTs to the List-Unsubscribe URL.
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Scope:
    """What a valid link names: the recipient, and for an unsubscribe link what it leaves."""

    recipient: Recipient
    category: str = ""
    channel: str = ""


def unsubscribe_token(*, recipient: Recipient, category: str, channel: str) -> str:
    return signing.dumps(
        {"r": recipient.public_id.hex, "c": category, "ch": channel}, salt=UNSUBSCRIBE_SALT
    )


def preferences_token(*, recipient: Recipient) -> str:
    return signing.dumps({"r": recipient.public_id.hex}, salt=PREFERENCES_SALT)


def unsubscribe_url(*, recipient: Recipient, category: str, channel: str) -> str:
    token = unsubscribe_token(recipient=recipient, category=category, channel=channel)
    return _public(reverse("unsubscribe", args=[token]))


def preferences_url(*, recipient: Recipient) -> str:
    return _public(reverse("preference-centre", args=[preferences_token(recipient=recipient)]))


def list_unsubscribe_headers(
    *, recipient: Recipient, category: str, channel: str
) -> dict[str, str]:
    """RFC 2369 `List-Unsubscribe` (the https link, then a mailto when one is configured) and
    RFC 8058 `List-Unsubscribe-Post`, which tells mail providers the link takes a one-click
    POST."""
    token = unsubscribe_token(recipient=recipient, category=category, channel=channel)
    targets = [f"<{_public(reverse('unsubscribe', args=[token]))}>"]
    if settings.UNSUBSCRIBE_MAILTO:
        targets.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject={quote(token)}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": ONE_CLICK}


def unsubscribe_check(token: str) -> Scope | None:
    """The scope a valid unsubscribe link names; None for anything else."""
    payload = _load(token, salt=UNSUBSCRIBE_SALT, max_age=settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS)
    if payload is None:
        return None
    category, channel = payload.get("c"), payload.get("ch")
    if not isinstance(category, str) or not isinstance(channel, str):
        return None
    recipient = _recipient(payload)
    return Scope(recipient, category, channel) if recipient is not None else None


def preferences_check(token: str) -> Scope | None:
    """The recipient a valid preference link names; None for anything else."""
    payload = _load(token, salt=PREFERENCES_SALT, max_age=preferences_max_age())
    recipient = _recipient(payload) if payload is not None else None
    return Scope(recipient) if recipient is not None else None


def _public(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def preferences_max_age() -> int:
    """How long a preference link works, in seconds (0: for ever)."""
    return int(settings.PREFERENCES_LINK_MAX_AGE_SECONDS)


def _load(token: str, *, salt: str, max_age: int) -> dict[str, object] | None:
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age or None)
    except (signing.BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
        return None
    return payload if isinstance(payload, dict) else None


def _recipient(payload: dict[str, object]) -> Recipient | None:
    public_id = payload.get("r")
    if not isinstance(public_id, str):
        return None
    try:
        parsed = uuid.UUID(hex=public_id)
    except ValueError:
        return None
    return (
        Recipient.objects.select_related("client")
        .filter(public_id=parsed, erased_at__isnull=True)
        .first()
    )
