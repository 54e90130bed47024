"""Counting messages in the Redis queues the way kombu stores them."""

from __future__ import annotations

import redis

from config.queues import ALL_QUEUES

# kombu's Redis transport files a message with priority p under "<queue>\x06\x16<step>" (step 0
# is the bare name). Whether a message carries the default priority 5 depends on whether the
# publishing process imported the task module (the beat admin does, for one): count them all.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queued_counts(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (queues with none are left out)."""
    counts = {q: sum(int(client.llen(q + s)) for s in PRIORITY_SUFFIXES) for q in ALL_QUEUES}
    return {q: n for q, n in counts.items() if n}
