"""Counting messages in the Redis queues the way kombu stores them (the broker adapter's)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.connection

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


def transaction_answer_lost(monkeypatch: pytest.MonkeyPatch, error: type[Exception]) -> list[int]:
    """From now on, a MULTI/EXEC sent to Redis runs there but its answer is lost: sending it
    raises `error` once it is written (a read timeout, a reset connection). Returns a list that
    gets an item per transaction sent."""
    sent: list[int] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def answer_lost(self: Any, command: Any, check_health: bool = True) -> None:
        real(self, command, check_health)
        first = command[0] if isinstance(command, list) and command else command
        if bytes(first).split(b"\r\n")[2] == b"MULTI":
            sent.append(1)
            raise error("Timeout reading from socket")

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", answer_lost)
    return sent
