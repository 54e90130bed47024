"""Counting messages in the Redis queues the way kombu stores them."""

from __future__ import annotations

import json

import redis

from apps.deliveries.queueing import send_message_delivery_ids
from config.queues import ALL_QUEUES

# kombu's Redis transport files a message with priority p under "<queue>\x06\x16<step>" (step 0
# is the bare name). Whether a message carries the default priority 5 depends on whether the
# publishing process imported the task module (the beat admin does, for one): count them all.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queued_counts(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (queues with none are left out)."""
    counts = {q: sum(int(client.llen(q + s)) for s in PRIORITY_SUFFIXES) for q in ALL_QUEUES}
    return {q: n for q, n in counts.items() if n}


def queued_delivery_ids(client: redis.Redis) -> dict[str, list[str]]:
    """Delivery ids in the send messages waiting per queue (a message carries a batch)."""
    found: dict[str, list[str]] = {}
    for queue in ALL_QUEUES:
        for suffix in PRIORITY_SUFFIXES:
            for raw in client.lrange(queue + suffix, 0, -1):
                ids = send_message_delivery_ids(json.loads(raw))
                if ids:
                    found.setdefault(queue, []).extend(ids)
    return found


def queued_delivery_counts(client: redis.Redis) -> dict[str, int]:
    """Deliveries waiting per queue, whatever the batching (queues with none left out)."""
    return {queue: len(ids) for queue, ids in queued_delivery_ids(client).items()}
