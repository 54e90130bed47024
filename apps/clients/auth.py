"""Service authentication: `Authorization: Bearer <api key>`."""

from __future__ import annotations

import hmac
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import redis
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.clients.keycache import verified_keys
from apps.clients.models import ApiClient, ApiKey
from apps.clients.services import KEY_PREFIX, api_key_hash, api_key_mark_used
from apps.core.broker import service_client
from notifier.ratelimit import TokenBucket

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)
# A recipient token (Django's signing: `payload:signature`) sent as Bearer: say which scheme it
# takes. API keys never contain a colon, so nothing else gets this hint.
RECIPIENT_SCHEME_HINT = (
    "Invalid API key. This looks like a recipient token: send it as "
    "`Authorization: Recipient <token>` (Bearer is for API keys)."
)


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
            hint = RECIPIENT_SCHEME_HINT if ":" in raw else "Invalid API key."
            raise exceptions.AuthenticationFailed(hint)
        digest = api_key_hash(raw)
        cached = verified_keys.get(digest)
        if cached is not None:
            api_key_mark_used(key=cached[1])
            return cached
        generation = verified_keys.generation()
        key = (
            ApiKey.objects.select_related("client")
            .filter(prefix=parts[1], revoked_at__isnull=True)
            .first()
        )
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        verified_keys.put(digest, (key.client, key), generation=generation)
        api_key_mark_used(key=key)
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


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A view may name keys of the service's Redis it reads on every request (`throttle_reads`): the
# throttle reads them in its own call (one round trip fewer) and leaves {key: value} on the
# request under this attribute, absent when it made no call (no limit, Redis unreachable).
THROTTLE_READ = "throttle_read"


def throttle_reads_of(view: Any) -> tuple[str, ...]:
    return tuple(getattr(view, "throttle_reads", ()))


def throttle_read(request: Request) -> dict[str, Any] | None:
    """What the throttle read for the view (see THROTTLE_READ), or None."""
    return getattr(request, THROTTLE_READ, None)


def _throttle_redis() -> redis.Redis:
    # Fail fast: with Redis down a request is served at once, not after redis-py's backoff.
    # The template cache reads its token through this same client (apps.templates.cache): a
    # token read here stands for its own read only while both ask one Redis (tested).
    return service_client(fail_fast=True)


@lru_cache(maxsize=4096)
def _key_bucket(name: str, count: int, seconds: int) -> TokenBucket:
    return TokenBucket(_throttle_redis(), name, rate=count / seconds, burst=count)


def _parse_rate(rate: str, scope: str) -> tuple[int, int]:
    """ "6000/min" -> (6000, 60), DRF's notation (s, m, h, d by their first letter)."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period[:1]]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{scope} rate {rate!r}: expected like 6000/min") from exc


class RedisRateThrottle(BaseThrottle):
    """A request rate per caller (settings: DEFAULT_THROTTLE_RATES[scope], e.g. "6000/min"), a
    token bucket in Redis: the rate sustained, up to one period's worth at once. One Lua call
    per request whatever the rate (DRF's SimpleRateThrottle reads and writes every request's
    timestamp of the period in one cache entry: 6,000 of them at 100 requests/s).
    Subclasses name the bucket a request draws from (None: not theirs to limit)."""

    scope = ""

    def __init__(self) -> None:
        self._wait = 0.0

    def bucket_name(self, request: Request) -> str | None:
        raise NotImplementedError

    def get_rate(self) -> str | None:
        # Read per request, not at import: settings overrides (tests, reloads) take effect.
        from rest_framework.settings import api_settings

        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def allow_request(self, request: Request, view: Any) -> bool:
        # The bucket first: every request passes each throttle class, most are not its kind.
        name = self.bucket_name(request)
        rate = self.get_rate() if name is not None else None
        if rate is None or name is None:
            return True
        count, seconds = _parse_rate(rate, self.scope)
        try:
            token = _key_bucket(name, count, seconds).acquire(read=throttle_reads_of(view))
        except redis.RedisError:  # Redis unreachable: serve rather than fail every request
            logger.warning("throttle unavailable; request allowed", exc_info=True)
            return True
        if token.read is not None:
            setattr(request, THROTTLE_READ, token.read)
        self._wait = token.wait
        return token.allowed

    def wait(self) -> float:
        return max(self._wait, 1.0)


class ApiKeyRateThrottle(RedisRateThrottle):
    """Per-key request rate (DEFAULT_THROTTLE_RATES['api_key'])."""

    scope = "api_key"

    def bucket_name(self, request: Request) -> str | None:
        return f"api-key:{request.auth.prefix}" if isinstance(request.auth, ApiKey) else None
