"""Service authentication: `Authorization: Bearer <api key>`."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from apps.clients.keycache import verified_keys
from apps.clients.models import ApiClient, ApiKey
from apps.clients.services import KEY_PREFIX, api_key_hash

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key.") from exc
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        digest = api_key_hash(raw)
        cached = verified_keys.get(digest)
        if cached is not None:
            return cached
        key = (
            ApiKey.objects.select_related("client")
            .filter(prefix=parts[1], revoked_at__isnull=True)
            .first()
        )
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        verified_keys.put(digest, (key.client, key))
        return key.client, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def request_client(request: Request) -> ApiClient:
    """The API client behind a request that passed IsServiceClient."""
    user = request.user
    if not isinstance(user, ApiClient):
        raise exceptions.NotAuthenticated()
    return user


class IsServiceClient(BasePermission):
    """The caller authenticated with an API key."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, ApiClient)


class IsOpsClient(BasePermission):
    """The caller authenticated with an `--ops` API key."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, ApiClient) and request.user.is_ops


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-key request rate (settings: DEFAULT_THROTTLE_RATES['api_key'])."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        # Read per request, not at import: settings overrides (tests, reloads) take effect.
        from rest_framework.settings import api_settings

        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # Redis unreachable: serve rather than fail every request
            logger.warning("throttle unavailable; request allowed", exc_info=True)
            return True

    def wait(self) -> float:
        # DRF answers None when the window is over-full (rate lowered): a 429 still needs a time.
        wait: float | None = super().wait()
        if wait is None:
            duration = float(self.duration)  # type: ignore[attr-defined]
            wait = duration - (self.now - self.history[-1]) if self.history else duration
        return max(float(wait), 1.0)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
        return None
