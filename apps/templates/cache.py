"""The current version of each template, per process, never stale after a save.

`POST /api/v1/notifications` needs the template and its current version on every request; they
change only when a template is saved. Each process keeps (client, key) -> (generation, version)
here, and every request checks the generation token in Redis (one GET, no SQL): an entry made
under another token is read again from PostgreSQL.

Every write to a template or a version calls `templates_cache_invalidate` explicitly: the
template services do (a new version, a metadata-only save, a delete), and the admin saves
through them (it cannot delete a template: its versions are read-only there, so the cascade
is refused). No model signal does it (../shared/STYLE.md: no logic in signals), so a
new write path must go through a service. It sets a new random token twice: inside its transaction,
so that a save cannot commit while Redis is down (the save's 503; a token it could not set
would leave the other processes' entries looking current once Redis is back), and once it has
committed, so that what another process read between the first token and the commit (the old
version, under the new token) is not current either. A request that finds Redis down reads the
database and empties this process's entries: it never fails for the cache and never trusts
what may have been superseded while it could not check. A random token rather than a counter:
a flushed Redis that counts again from zero cannot bring an old token back.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from django.db import transaction

from apps.clients.models import ApiClient
from apps.core.broker import service_client
from apps.templates.models import TemplateVersion
from apps.templates.selectors import template_current_by_key, version_channels

logger = logging.getLogger(__name__)

GENERATION_KEY = "notifier:templates:generation"


def _token() -> str:
    return secrets.token_hex(8)


def _service_redis() -> redis.Redis:
    return service_client(fail_fast=True)


class TemplateVersions:
    """Current template versions by (client id, key), valid while Redis holds their token."""

    MAX_ENTRIES = 1024

    def __init__(self, connect: Callable[[], redis.Redis] = _service_redis) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[bytes | str, TemplateVersion]] = {}

    def current(self, *, client: ApiClient, key: str) -> TemplateVersion | None:
        """What `template_current_by_key` answers now, from this process's copy when no
        template changed since it was read. The token is the one read earlier in this request
        (`generation_read`), else read now."""
        try:
            known = _generation_read.get()
            generation = self._connect().get(GENERATION_KEY) if known is _UNREAD else known
            if generation is None:  # a fresh or flushed Redis: start a token, cache next time
                self._connect().set(GENERATION_KEY, _token(), nx=True)
        except redis.RedisError as exc:
            logger.warning("template cache bypassed, Redis unavailable: %s", exc)
            self.clear()
            return template_current_by_key(client=client, key=key)
        if generation is None:
            return template_current_by_key(client=client, key=key)
        with self._lock:
            entry = self._entries.get((client.pk, key))
        if entry is not None and entry[0] == generation:
            return entry[1]
        version = template_current_by_key(client=client, key=key)
        if version is None:  # not cached: a template created next must be found at once
            return version
        version_channels(version=version)  # its variants, read once per version and process
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[(client.pk, key)] = (generation, version)
        return version

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


template_versions = TemplateVersions()

_UNREAD = object()
_generation_read: ContextVar[Any] = ContextVar("template_generation_read", default=_UNREAD)


@contextmanager
def generation_read(value: bytes | str | None) -> Iterator[None]:
    """Within this block the token (GENERATION_KEY's value, None: absent) is `value`, read
    earlier in the same request in a call the request made anyway (the API throttle's). A save
    that returned before the request began had set its token before that read, so the request
    still sees the new version; an entry is trusted only if made under the token read."""
    reset = _generation_read.set(value)
    try:
        yield
    finally:
        _generation_read.reset(reset)


def _generation_bump() -> None:
    _service_redis().set(GENERATION_KEY, _token())


def _generation_bump_after_commit() -> None:
    try:
        _generation_bump()
    except redis.RedisError:
        # Only if Redis failed between this save's first token and now: logged, the first
        # token already made every entry read before it stale.
        logger.exception("template cache: the token after commit could not be set")


def templates_cache_invalidate() -> None:
    """A template or a version was written: no process may serve what it cached before.

    Raises redis.RedisError (a 503 for the API) when Redis is down, before the write commits."""
    _generation_bump()
    transaction.on_commit(_generation_bump_after_commit)
