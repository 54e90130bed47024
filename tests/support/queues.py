"""Counting messages in the Redis queues the way kombu stores them (the broker adapter's)."""

from __future__ import annotations

import redis

from apps.core import broker
from apps.deliveries.queueing import send_message_delivery_ids


def queued_counts(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (queues with none are left out)."""
    return {q: n for q, n in broker.queue_depths(client=client).items() if n}


def queued_delivery_ids(client: redis.Redis) -> dict[str, list[str]]:
    """Delivery ids in the send messages waiting per queue (a message carries a batch)."""
    found: dict[str, list[str]] = {}
    for queue, message in broker.queued_messages(client=client):
        ids = send_message_delivery_ids(message)
        if ids:
            found.setdefault(queue, []).extend(ids)
    return found


def queued_delivery_counts(client: redis.Redis) -> dict[str, int]:
    """Deliveries waiting per queue, whatever the batching (queues with none left out)."""
    return {queue: len(ids) for queue, ids in queued_delivery_ids(client).items()}
