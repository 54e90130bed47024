"""At most WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT attempts at one endpoint under way at once,
across every webhooks worker: one hostile or slow receiver holds that many threads at most,
never the whole pool. A Redis sorted set per endpoint whose members are the attempts under way,
each scored by when its hold runs out (the lease), so a worker that died frees its slot then.
Redis unreachable: the attempt goes ahead (as with the breaker; the deadline still bounds it)."""

from __future__ import annotations

import logging
import time
import uuid

import redis
from django.conf import settings

from apps.core.broker import service_client

logger = logging.getLogger(__name__)


def _key(endpoint_id: str) -> str:
    return f"notifier:webhooks:in-flight:{endpoint_id}"


def slot_take(endpoint_id: str, *, hold_seconds: float) -> str | None:
    """A slot's token, or None when the endpoint has its limit under way ('' when Redis is
    down: no slot to give back). Two attempts racing for the last slot may both be refused."""
    limit = int(settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT)
    if limit <= 0:
        return ""
    token, now, key = uuid.uuid4().hex, time.time(), _key(endpoint_id)
    try:
        pipe = service_client().pipeline()
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {token: now + hold_seconds})
        pipe.zcard(key)
        pipe.expire(key, int(hold_seconds) + 1)
        _, _, count, _ = pipe.execute()
        if count > limit:
            service_client().zrem(key, token)
            return None
    except redis.RedisError:
        logger.warning("webhook in-flight slots unavailable; attempt allowed", exc_info=True)
        return ""
    return token


def slot_give_back(endpoint_id: str, token: str) -> None:
    if not token:
        return
    try:
        service_client().zrem(_key(endpoint_id), token)
    except redis.RedisError:  # it runs out with its hold
        logger.warning("webhook in-flight slot not given back", exc_info=True)
