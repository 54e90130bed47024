"""`python -m bench --webhook-receiver-sleep`: the drain counts the channel's unacked messages,
not the webhooks worker's; the slow receiver answers after its sleep and counts."""

from __future__ import annotations

import json
import time

import httpx
import redis

from bench.drain import queue_remaining, unacked_webhooks
from bench.webhooks import SlowReceiver


def test_the_drain_leaves_the_webhooks_workers_unacked_messages_out(
    clean_redis: redis.Redis,
) -> None:
    clean_redis.hset("unacked", "a", json.dumps([{}, "", "email.normal"]))
    clean_redis.hset("unacked", "b", json.dumps([{}, "", "webhooks"]))
    clean_redis.hset("unacked", "c", json.dumps([{}, "", "webhooks"]))
    clean_redis.rpush("email.normal", "x")

    assert unacked_webhooks(clean_redis) == 2
    assert queue_remaining(clean_redis, "email") == 2  # one waiting, one unacked


def test_the_slow_receiver_sleeps_then_answers_200() -> None:
    receiver = SlowReceiver(0.3)
    try:
        started = time.monotonic()
        response = httpx.post(receiver.url, content=b"{}")
        took = time.monotonic() - started
    finally:
        receiver.stop()

    assert response.status_code == 200
    assert took >= 0.3
    assert receiver.received == 1
