"""Production: everything from the environment, nothing defaulted that could leak.

Refuses to start (system check errors, apps/core/production.py) without a proper
DJANGO_SECRET_KEY and an https PUBLIC_BASE_URL. HTTPS is assumed: on by default, each part
switchable for deployments whose TLS ends at a proxy or load balancer in front of the service.
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

# Empty when unset: the system check then names the problem (instead of a bare KeyError).
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# Old keys still accepted when verifying signatures (tokens, sessions) during a key rotation.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = False
REFUSE_UNSAFE_SETTINGS = True
# No default: the links in emails must name the public https address (system check E004).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="").rstrip("/")

# --- Static files -----------------------------------------------------------------------------
# WhiteNoise serves what `collectstatic` gathered (the Dockerfile runs it): compressed copies and
# content-hashed names, cached for a year by browsers. Not found in STATIC_ROOT: not served.
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTPS ------------------------------------------------------------------------------------
# The header (and value) by which the TLS-terminating proxy says the client used HTTPS, as
# "HEADER,value"; empty when clients reach this process directly. The proxy must set or strip
# it: a client-supplied one would pass for HTTPS.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
SECURE_PROXY_SSL_HEADER = (
    (_proxy_ssl_header[0], _proxy_ssl_header[1]) if len(_proxy_ssl_header) == 2 else None
)
# Plain-HTTP requests are redirected to HTTPS, except the probes and the metrics scrape,
# which orchestrators and Prometheus make over plain HTTP from inside the network.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading puts the whole domain in browsers' HTTPS-only lists: the domain owner's decision,
# so off unless asked for, and Django's reminder about it (security.W021) is silenced then.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
