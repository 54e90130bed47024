"""Masking for logs (and error reports): personal data (`a***@example.com`, `***4321`) and
credentials (`?token=***`, `Authorization: Bearer ***`, `nk_1a2b3c4d_***`)."""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Not inside a longer word or identifier: a UUID's digit groups are not a phone number.
PHONE_RE = re.compile(r"(?<![\w.-])(?:\+|%2B)?\d[\d ()-]{6,}(\d{4})(?![\w-])")

# A query parameter (or cookie) whose name says it holds a credential: `?token=`, `&api_key=`,
# `access_token=`, `password=`, `sessionid=`... (uvicorn logs each WebSocket handshake with its
# query string, and recipient tokens travel there).
QUERY_SECRET_RE = re.compile(
    r"(?:^|(?<=[?&;\s]))"
    r"([\w.-]*(?:token|key|secret|password|passwd|signature)|sessionid)=[^&;\s\"'#<>]+",
    re.IGNORECASE,
)
# An Authorization (or Proxy-Authorization) header however it is written: `Authorization:
# Bearer x`, a dict's `'Authorization': 'Bearer x'`, Django's `'HTTP_AUTHORIZATION': 'x'`, an
# ASGI scope's `(b'authorization', b'Recipient x')`. The scheme stays, the credential goes.
AUTHORIZATION_RE = re.compile(
    r"(authorization['\"]?\s*[:=,]\s*(?:(?-i:b)?['\"])?)((?:Bearer|Recipient|Basic|Token|Digest)\s+)?"
    r"[^\s'\",;}\])]+",
    re.IGNORECASE,
)
# The signed token in a hosted page's path (`/u/<token>`, `/preferences/<token>`): the link's
# holder may unsubscribe, or change every preference, with it (django.request logs each 4xx).
LINK_TOKEN_RE = re.compile(r"(/(?:u|preferences)/)[^/\s?#\"'<>]+")
# One of our API keys anywhere (`nk_<8 hex>_<secret>`): the prefix, which operators see in the
# admin anyway, stays, so a line can still be traced to its key.
API_KEY_RE = re.compile(r"(?<![A-Za-z0-9])(nk_[0-9a-f]{8}_)[A-Za-z0-9_-]+")
# A field (header, cookie, dict key, variable) whose name says its value is a credential.
# Signing keys too: Django's SECRET_KEY (DJANGO_SECRET_KEY, SECRET_KEY_FALLBACKS, in a
# settings dict or a frame's locals), a private or access key.
SECRET_NAME_RE = re.compile(
    r"(?:^|[_-])(?:authorization|cookie|token|api[_-]?key|secret|password|passwd|sessionid"
    r"|csrftoken|(?:secret|private|access|signing)[_-]?key(?:[_-]fallbacks)?)$",
    re.IGNORECASE,
)


def is_secret_name(name: object) -> bool:
    """Whether a field called `name` holds a credential (`Authorization`, `api_key`...)."""
    return isinstance(name, str) and SECRET_NAME_RE.search(name) is not None


def mask_address(value: str) -> str:
    """Mask an email address or phone number; device tokens keep only their last 4 characters."""
    if not value:
        return value
    if "@" in value:
        return mask_text(value)
    return "***" + value[-4:]


def mask_secrets(text: str) -> str:
    """Mask credentials inside free text: query-string tokens and keys, Authorization
    headers, API keys, the tokens in unsubscribe and preference links."""
    text = API_KEY_RE.sub(r"\1***", text)
    text = LINK_TOKEN_RE.sub(r"\1***", text)
    text = AUTHORIZATION_RE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}***", text)
    return QUERY_SECRET_RE.sub(r"\1=***", text)


def mask_text(text: str) -> str:
    """Mask every credential, email address and phone number inside free text."""
    # Credentials first: a token's digits must not be half-masked as a phone number.
    text = mask_secrets(text)
    text = EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE_RE.sub(lambda m: f"***{m.group(1)}", text)
