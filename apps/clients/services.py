"""Writes for API clients and their keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from apps.clients.keycache import verified_keys
from apps.clients.models import ApiClient, ApiKey

KEY_PREFIX = "nk"


def api_key_hash(raw_key: str) -> str:
    # Keys are 32 random bytes: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, client_name: str, is_ops: bool = False) -> tuple[ApiKey, str]:
    """Create (or reuse) the client and give it a new key. Returns the row and the raw key."""
    client, created = ApiClient.objects.get_or_create(name=client_name, defaults={"is_ops": is_ops})
    if not created and is_ops and not client.is_ops:
        client.is_ops = True
        client.save(update_fields=["is_ops"])
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(client=client, prefix=prefix, key_hash=api_key_hash(raw))
    return key, raw


def api_keys_revoke(*, keys: Iterable[ApiKey]) -> int:
    """Revoke keys: they stop authenticating at once in this process, and in the others within
    API_KEY_CACHE_SECONDS (keycache.py). Returns how many were still live."""
    ids = [k.pk for k in keys]
    revoked = ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    # This process at once, and again once committed (a request that read the key before the
    # revocation committed must not cache it); the others within API_KEY_CACHE_SECONDS.
    verified_keys.clear()
    transaction.on_commit(verified_keys.clear)
    return revoked
