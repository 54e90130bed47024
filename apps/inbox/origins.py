"""Which web origins may use the inbox from a page: open its WebSocket, and call its REST API
and event stream cross-origin (CORS), as the drop-in bell does on a product's own site.

A recipient token in a page's script is enough to open a socket; the Origin check keeps other
sites' pages from doing it with a token they obtained. WEBSOCKET_ALLOWED_ORIGINS lists the
origins (`https://app.example.com`, or a host such as `.example.com` for it and its
subdomains); when empty, ALLOWED_HOSTS serves. Any origin (`*`) is for development only. The
same list, matched the same way (Channels' own matcher), answers the CORS checks of
`/api/v1/inbox...` (django-cors-headers, through its `check_request_enabled` signal); no other
path answers cross-origin requests.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

ANY = "*"
# Django's own answer for ALLOWED_HOSTS = [] under DEBUG.
DEBUG_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
# The paths a page of an allowed origin may call cross-origin (CORS_URLS_REGEX says the same).
INBOX_PATHS = re.compile(r"^/api/v1/inbox(/|$)")


def websocket_allowed_origins() -> list[str]:
    """The allowed origin patterns. Raises ImproperlyConfigured for `*` outside DEBUG."""
    origins = list(settings.WEBSOCKET_ALLOWED_ORIGINS) or list(settings.ALLOWED_HOSTS)
    if ANY in origins and not settings.DEBUG:
        source = (
            "WEBSOCKET_ALLOWED_ORIGINS"
            if settings.WEBSOCKET_ALLOWED_ORIGINS
            else "ALLOWED_HOSTS (WEBSOCKET_ALLOWED_ORIGINS is empty)"
        )
        raise ImproperlyConfigured(
            f"{source} allows any origin to open the inbox WebSocket; outside DEBUG set "
            "WEBSOCKET_ALLOWED_ORIGINS to the origins of your apps, e.g. https://app.example.com"
        )
    if not origins and settings.DEBUG:
        return DEBUG_HOSTS
    return origins


class _BrowserOriginValidator(OriginValidator):  # type: ignore[misc]  # channels is untyped
    """Channels' check, except that a handshake without an Origin header passes: browsers
    always send one (so a foreign page is still refused), while native mobile clients (OkHttp,
    URLSession) often send none, and a client outside a browser can claim any origin anyway.
    The recipient token is what authenticates; the Origin check only stops other sites' pages."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))


def websocket_origin_guard(application: Any) -> OriginValidator:
    """`application` behind the Origin check (built once, when the ASGI app is)."""
    return _BrowserOriginValidator(application, websocket_allowed_origins())


@register("security", deploy=False)
def check_websocket_origins(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        websocket_allowed_origins()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="inbox.E001")]
    return []


def inbox_cors_allowed(sender: Any = None, request: Any = None, **kwargs: Any) -> bool:
    """django-cors-headers' `check_request_enabled`: a request to the inbox API from an origin
    the WebSocket would accept. A misconfigured list (`*` outside DEBUG, which inbox.E001
    reports) allows nothing rather than failing the request."""
    origin = request.headers.get("origin") if request is not None else None
    if not origin or not INBOX_PATHS.match(request.path_info):
        return False
    try:
        origins = websocket_allowed_origins()
    except ImproperlyConfigured:
        return False
    try:
        parsed = urlparse(origin)
    except ValueError:
        return False
    return bool(OriginValidator(None, origins).validate_origin(parsed))
