"""At most WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT attempts at one endpoint under way at once,
across every webhooks worker: one hostile or slow receiver holds that many threads at most,
never the whole pool. A Redis sorted set per endpoint whose members are the attempts under way,
each scored by when its hold runs out (the lease), so a worker that died frees its slot then.
Redis unreachable: the attempt is deferred, unsent and uncounted (attempts.py), asking it no more
than redis_guard allows (a fail-fast client, then a back-off): a Redis that does not answer
must not stretch an attempt past its lease."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection

import redis
from django.conf import settings

from apps.webhooks.redis_guard import guarded

logger = logging.getLogger(__name__)
# slots_free's answer for an endpoint when WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT is 0 (no limit).
NO_LIMIT = 1_000_000


def _key(endpoint_id: str) -> str:
    return f"notifier:webhooks:in-flight:{endpoint_id}"


def slot_take(endpoint_id: str, *, hold_seconds: float) -> str | None:
    """A slot's token ('' when there is no limit), or None when the endpoint has its limit
    under way. Two attempts racing for the last slot may both be refused. Raises RedisError
    when Redis fails (or failed moments ago)."""
    limit = int(settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT)
    if limit <= 0:
        return ""
    token, now, key = uuid.uuid4().hex, time.time(), _key(endpoint_id)
    with guarded() as client:
        pipe = client.pipeline()
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {token: now + hold_seconds})
        pipe.zcard(key)
        pipe.expire(key, int(hold_seconds) + 1)
        _, _, count, _ = pipe.execute()
        if count > limit:
            client.zrem(key, token)
            return None
    return token


def slot_give_back(endpoint_id: str, token: str) -> None:
    if not token:
        return
    try:
        with guarded() as client:
            client.zrem(_key(endpoint_id), token)
    except redis.RedisError:  # it runs out with its hold
        logger.warning("webhook in-flight slot not given back", exc_info=True)


def slots_free(endpoint_ids: Collection[str]) -> dict[str, int]:
    """Each endpoint's slots not taken now (one Redis round trip for them all; a large number
    when there is no limit). Raises RedisError when Redis fails (or failed moments ago)."""
    limit = int(settings.WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT)
    ids = list(endpoint_ids)
    if limit <= 0:
        return dict.fromkeys(ids, NO_LIMIT)
    now = time.time()
    with guarded() as client:
        pipe = client.pipeline(transaction=False)
        for endpoint_id in ids:
            pipe.zremrangebyscore(_key(endpoint_id), "-inf", now)
            pipe.zcard(_key(endpoint_id))
        taken = pipe.execute()[1::2]
    return {e: max(limit - int(n), 0) for e, n in zip(ids, taken, strict=True)}
