"""Recipient authentication: `Authorization: Recipient <token>` (end users' apps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.clients.auth import RedisRateThrottle
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_verify

if TYPE_CHECKING:  # rest_framework.views imports auth modules through the settings
    from rest_framework.views import APIView


class RecipientPrincipal:
    """`request.user` for recipient-authenticated requests."""

    is_authenticated = True

    def __init__(self, recipient: Recipient) -> None:
        self.recipient = recipient
        self.pk = f"recipient:{recipient.pk}"


class RecipientTokenAuthentication(BaseAuthentication):
    keyword = "Recipient"

    def authenticate(self, request: Request) -> tuple[RecipientPrincipal, str] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = header[1].decode("latin-1")
        recipient = recipient_token_verify(token)
        if recipient is None:
            raise exceptions.AuthenticationFailed("Invalid or expired recipient token.")
        return RecipientPrincipal(recipient), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsRecipient(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, RecipientPrincipal)


def request_recipient(request: Request) -> Recipient:
    """The recipient behind a request that passed IsRecipient."""
    user = request.user
    if not isinstance(user, RecipientPrincipal):
        raise exceptions.NotAuthenticated()
    return user.recipient


class RecipientRateThrottle(RedisRateThrottle):
    """Per-recipient request rate for recipient-token requests
    (DEFAULT_THROTTLE_RATES['recipient']): one bucket per recipient, whichever of its tokens
    is used, so minting more tokens does not buy more requests."""

    scope = "recipient"

    def bucket_name(self, request: Request) -> str | None:
        user = request.user
        return f"recipient:{user.recipient.pk}" if isinstance(user, RecipientPrincipal) else None
