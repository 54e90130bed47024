"""The service's Redis as the webhooks use it: a fail-fast client (no retries, a 1 s wait), and
after an error this process leaves Redis alone for BACKOFF_SECONDS. A Redis that does not
answer would otherwise cost its wait (redis-py's retries times the 5 s socket timeout, ~20 s)
on every call: inside every status transaction (presence.py), and in every attempt, which then
outlives its lease and is handed to a second worker (a duplicate webhook)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from apps.core.broker import service_client

BACKOFF_SECONDS = 5.0
_skipped_until = 0.0


class RedisSkipped(redis.ConnectionError):
    """Redis failed less than BACKOFF_SECONDS ago in this process: not tried."""


def fail_fast_client() -> redis.Redis:
    """The fail-fast client; RedisSkipped while this process backs off."""
    if time.monotonic() < _skipped_until:
        raise RedisSkipped("Redis failed moments ago; not tried again yet")
    return service_client(fail_fast=True)


def redis_failed() -> None:
    """Redis just failed: leave it alone for BACKOFF_SECONDS."""
    global _skipped_until
    _skipped_until = time.monotonic() + BACKOFF_SECONDS


@contextmanager
def guarded() -> Iterator[redis.Redis]:
    """The fail-fast client for a few calls; a RedisError in them starts the back-off (and is
    raised on). RedisSkipped at once while backing off."""
    client = fail_fast_client()
    try:
        yield client
    except RedisSkipped:
        raise
    except redis.RedisError:
        redis_failed()
        raise
