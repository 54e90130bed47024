"""Writes for API clients and their keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.clients.keycache import verified_keys
from apps.clients.models import ApiClient, ApiKey

logger = logging.getLogger(__name__)

KEY_PREFIX = "nk"
# `last_used_at` is written at most this often per key: it tells operators which keys are
# still in use, and a write per request would cost every request a query.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


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


@transaction.atomic
def api_key_rotate(*, client_name: str) -> tuple[ApiKey, str]:
    """Give the client a new key and revoke every key it had (`make run`'s demo key: each run
    prints a new one, and the last run's must not stay live). Returns the row and the raw key."""
    key, raw = api_key_create(client_name=client_name)
    api_keys_revoke(
        keys=ApiKey.objects.filter(client=key.client, revoked_at__isnull=True).exclude(pk=key.pk)
    )
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


def api_key_mark_used(*, key: ApiKey) -> bool:
    """Record that `key` authenticated a request, unless that was recorded less than a minute
    ago: judged on the in-memory key first (the per-process key cache keeps one object per
    key, so a busy key costs one UPDATE a minute per process), then by the UPDATE's own
    condition (so processes racing write the row once). Never fails the request. Returns
    whether an UPDATE was sent."""
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return False
    # Set first: concurrent requests on this cached object do not all send the UPDATE.
    key.last_used_at = now
    try:
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff), pk=key.pk
        ).update(last_used_at=now)
    except DatabaseError:  # bookkeeping only: the request is served (or refused) on its merits
        logger.warning("could not record the API key's last use", exc_info=True)
    return True
