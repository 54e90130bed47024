"""Which web origins may open the inbox WebSocket.

A recipient token in a page's script is enough to open a socket; the Origin check keeps other
sites' pages from doing it with a token they obtained. WEBSOCKET_ALLOWED_ORIGINS lists the
origins (`https://app.example.com`, or a host such as `.example.com` for it and its
subdomains); when empty, ALLOWED_HOSTS serves. Any origin (`*`) is for development only.
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

ANY = "*"
# Django's own answer for ALLOWED_HOSTS = [] under DEBUG.
DEBUG_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


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
