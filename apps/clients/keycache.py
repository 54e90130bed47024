"""Recently verified API keys, per process (see `VerifiedKeys`)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from apps.clients.models import ApiClient, ApiKey


class VerifiedKeys:
    """Keys verified in the last API_KEY_CACHE_SECONDS, by hash, in this process: a busy
    client's requests skip the key lookup (one query each). A revoked key stops working in this
    process at once and in the others within that many seconds."""

    MAX_ENTRIES = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, tuple[ApiClient, ApiKey]]] = {}
        self._generation = 0  # moves on every clear()

    def generation(self) -> int:
        """Read before looking a key up; `put` it with this, and a clear() in between (a
        revocation) keeps what the lookup saw out of the cache."""
        with self._lock:
            return self._generation

    def get(self, digest: str) -> tuple[ApiClient, ApiKey] | None:
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, value: tuple[ApiClient, ApiKey], *, generation: int) -> None:
        ttl = float(settings.API_KEY_CACHE_SECONDS)
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


verified_keys = VerifiedKeys()
