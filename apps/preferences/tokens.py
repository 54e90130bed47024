"""Signed links to the unsubscribe page and the preference centre.

A link names the recipient by its random `public_id` (never the sequential primary key nor the
client's external id), and an unsubscribe link also the category and channel it leaves: one
link cannot be edited into another (the signature covers all three). Unsubscribe links do not
expire unless UNSUBSCRIBE_LINK_MAX_AGE_SECONDS says so: an email read months later must still let
its reader leave. Preference links open the whole profile and expire after
PREFERENCES_LINK_MAX_AGE_SECONDS. Each kind of link has its own salt, so a preference link is
no unsubscribe link and no recipient token (apps/recipients/tokens.py) is either.

The unsubscribe page links to the preference centre with a preference link dated when the
unsubscribe link was issued (the email's own `{{ preferences_url }}` is dated the same): it dies
when that email's preference link does, so a forwarded email's unsubscribe link, which lives on,
cannot be turned into a fresh preference link again and again.
"""

from __future__ import annotations

import time
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
    issued_at: int = 0  # when the link was signed (Unix seconds)


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


def unsubscribe_page_preferences_url(scope: Scope) -> str | None:
    """The preference link an unsubscribe page may show: dated when its unsubscribe link was
    issued, so it expires with the email's own preference link; None once that has expired."""
    max_age = preferences_max_age()
    if max_age and time.time() - scope.issued_at > max_age:
        return None
    signer = _IssuedAt(salt=PREFERENCES_SALT)
    signer.issued_at = scope.issued_at
    token = signer.sign_object({"r": scope.recipient.public_id.hex})
    return _public(reverse("preference-centre", args=[token]))


class _IssuedAt(signing.TimestampSigner):
    # django.core.signing dates a signature "now" and takes no other time: this one is dated when
    # the unsubscribe link it comes from was. Verified by the ordinary signing.loads.
    issued_at = 0

    def timestamp(self) -> str:
        return signing.b62_encode(self.issued_at)


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
    if recipient is None:
        return None
    # The token is payload:timestamp:signature and its signature was just checked.
    return Scope(recipient, category, channel, signing.b62_decode(token.rsplit(":", 2)[1]))


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
