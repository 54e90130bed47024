"""Whether any client has an enabled endpoint, known per process without a query: the set of
such clients is cached beside a version token in Redis that every change of the endpoints
replaces (as the template cache does). With no endpoint anywhere, a batch of deliveries costs
the outbox nothing in the database (one Redis GET); otherwise one SELECT (outbox.py).

The token is replaced before the change commits and again after: a process that re-read the
set in between (and saw the old rows) reads it again once the second token is there (a batch
sent in that moment, a millisecond or so, misses the new endpoint). Redis unreachable: the set
is unknown and the outbox asks the database (and for redis_guard.BACKOFF_SECONDS this process
does not try Redis again); its key gone: a new token, the set read afresh."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

import redis
from django.db import transaction

from apps.core.broker import service_client
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.redis_guard import RedisSkipped, guarded

logger = logging.getLogger(__name__)

VERSION_KEY = "notifier:webhooks:endpoints-version"
_lock = threading.Lock()
_cached: tuple[bytes, frozenset[int]] | None = None


def _version() -> bytes | None:
    """The current version token (one GET; a new one when none is set); None when unknown
    (Redis failed now, or less than redis_guard.BACKOFF_SECONDS ago)."""
    try:
        with guarded() as client:
            version = client.get(VERSION_KEY)
            if version is None:  # never set, or Redis lost it: a new one (the set is read afresh)
                client.set(VERSION_KEY, uuid.uuid4().hex, nx=True)
                version = client.get(VERSION_KEY)
    except RedisSkipped:
        return None
    except redis.RedisError:
        logger.warning("webhook presence: Redis failed; the database is asked for a while")
        return None
    return version if isinstance(version, bytes) else None


def clients_with_endpoints() -> frozenset[int] | None:
    """The ids of the clients with an enabled endpoint; None when unknown (ask the database)."""
    global _cached
    version = _version()
    if version is None:
        return None
    cached = _cached
    if cached is not None and cached[0] == version:
        return cached[1]
    clients = frozenset(
        WebhookEndpoint.objects.filter(enabled=True).values_list("client_id", flat=True).distinct()
    )
    with _lock:
        _cached = (version, clients)
    return clients


def nobody_known() -> bool:
    """True when this process knows, without a query, that no client has an enabled endpoint
    (its cached set is empty and current); False when some may (or the set must be re-read).
    The outbox's receivers' `idle` check (apps.core.signals): no savepoint when it holds."""
    cached = _cached
    if cached is None or cached[1]:
        return False
    return _version() == cached[0]


def _replace() -> None:
    service_client().set(VERSION_KEY, uuid.uuid4().hex)


def endpoints_changed() -> None:
    """An endpoint was created, deleted, enabled or disabled: every process re-reads the set
    (now, and after this transaction commits). Raises RedisError when Redis is down (the API
    answers 503: nothing is saved)."""
    _replace()
    transaction.on_commit(_replace_quietly)


def _replace_quietly() -> None:
    try:
        _replace()
    except redis.RedisError:
        # The first replacement took: processes re-read, at worst before the commit, and then
        # see this endpoint from their next version change on. Drop the key so that they ask
        # the database until it is set again.
        logger.warning("webhook endpoints version not replaced after commit", exc_info=True)
        with contextlib.suppress(redis.RedisError):
            service_client().delete(VERSION_KEY)
