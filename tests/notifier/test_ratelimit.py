"""The token bucket against real Redis (no database)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from notifier.ratelimit import TokenBucket


@pytest.fixture
def bucket_name(redis_client: redis.Redis) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    redis_client.delete(f"notifier:bucket:{name}")


def test_burst_is_granted_then_refused_with_the_wait_until_the_next_token(
    redis_client: redis.Redis, bucket_name: str
) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=2.0, burst=3)

    grants = [bucket.acquire() for _ in range(4)]

    assert [g.allowed for g in grants] == [True, True, True, False]
    # Empty bucket at 2 tokens/s: the next token is at most 0.5 s away.
    assert 0 < grants[3].wait <= 0.5


def test_tokens_refill_at_the_rate(redis_client: redis.Redis, bucket_name: str) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=4.0, burst=1)
    assert bucket.acquire().allowed
    assert not bucket.acquire().allowed

    time.sleep(0.3)

    assert bucket.acquire().allowed
    assert not bucket.acquire().allowed


def test_refill_never_exceeds_the_burst(redis_client: redis.Redis, bucket_name: str) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=100.0, burst=2)
    bucket.acquire()
    time.sleep(0.2)  # 20 tokens' worth of time

    assert bucket.acquire().allowed

    # Capped at the burst when refilled: one of the two left, however long the wait was.
    assert float(redis_client.hget(bucket.key, "tokens") or 0) == 1.0


def test_two_clients_share_one_bucket(redis_client: redis.Redis, bucket_name: str) -> None:
    other = redis.Redis.from_url(settings.REDIS_URL)  # as another worker process would
    first = TokenBucket(redis_client, bucket_name, rate=0.01, burst=2)
    second = TokenBucket(other, bucket_name, rate=0.01, burst=2)

    assert first.acquire().allowed
    assert second.acquire().allowed
    assert not first.acquire().allowed
    assert not second.acquire().allowed
    other.close()


def test_concurrent_callers_never_take_more_than_the_burst(
    redis_client: redis.Redis, bucket_name: str
) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=0.001, burst=25)
    granted: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            allowed = bucket.acquire().allowed
            with lock:
                granted.append(allowed)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(granted) == 80
    assert sum(granted) == 25


def test_zero_rate_means_unlimited(redis_client: redis.Redis, bucket_name: str) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=0, burst=1)

    assert all(bucket.acquire().allowed for _ in range(50))
    assert not redis_client.exists(bucket.key)


def test_the_same_call_reads_the_keys_asked_for(
    redis_client: redis.Redis, bucket_name: str
) -> None:
    bucket = TokenBucket(redis_client, bucket_name, rate=2.0, burst=1)
    redis_client.set(f"{bucket_name}:a", "one")

    first = bucket.acquire(read=[f"{bucket_name}:a", f"{bucket_name}:absent"])
    refused = bucket.acquire(read=[f"{bucket_name}:a"])

    assert first.allowed
    assert first.read == {f"{bucket_name}:a": b"one", f"{bucket_name}:absent": None}
    assert not refused.allowed
    assert refused.read == {f"{bucket_name}:a": b"one"}
    assert bucket.acquire().read == {}
    assert TokenBucket(redis_client, bucket_name, rate=0, burst=1).acquire(read=["x"]).read is None
    redis_client.delete(f"{bucket_name}:a")
