"""Backpressure: refuse new notifications while the channel queues are too deep.

The depth is the number of messages waiting in Redis across every `<channel>.<priority>` queue
(kombu keeps one list per queue and message-priority step). One reading per process serves
for QUEUE_DEPTH_CACHE_SECONDS, so a burst of requests costs one Redis round trip a second.

The queues live on the broker, so that is where they are counted (CELERY_BROKER_URL, which is
REDIS_URL unless set apart). A broker that does not answer is a 503 too: a notification
accepted then could not be queued until it returns.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings

from apps.core import broker
from apps.core.errors import Unavailable
from notifier.queues import DELIVERY_QUEUES

_lock = threading.Lock()
_cached: tuple[float, int] | None = None


def queue_depth() -> int:
    """Messages waiting in the channel queues (a reading at most QUEUE_DEPTH_CACHE_SECONDS old)."""
    global _cached
    now = time.monotonic()
    with _lock:
        if _cached is not None and now - _cached[0] < settings.QUEUE_DEPTH_CACHE_SECONDS:
            return _cached[1]
    # The broker adapter's fail-fast client: a request waits a second at most for the reading
    # (a broker that is down is answered with a 503 at once, not after redis-py's backoff).
    depth = sum(broker.queue_depths(DELIVERY_QUEUES).values())
    with _lock:
        _cached = (now, depth)
    return depth


def queue_depth_forget() -> None:
    """Drop the cached reading (tests, and after an operator drains the queues)."""
    global _cached
    with _lock:
        _cached = None


def backpressure_check() -> None:
    """Raise Unavailable (503 with Retry-After) when the queues are past QUEUE_DEPTH_LIMIT or
    the broker cannot tell."""
    try:
        depth = queue_depth()
    except redis.RedisError as exc:
        raise Unavailable(
            "The delivery queues are unreachable; retry later.",
            retry_after=settings.DEPENDENCY_RETRY_AFTER_SECONDS,
        ) from exc
    if depth > settings.QUEUE_DEPTH_LIMIT:
        raise Unavailable(
            "The delivery queues are full; retry later.",
            retry_after=settings.BACKPRESSURE_RETRY_AFTER_SECONDS,
        )
