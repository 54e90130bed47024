"""The circuit breaker against real Redis (no database)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from notifier.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


@pytest.fixture
def name(redis_client: redis.Redis) -> Iterator[str]:
    value = f"test-{uuid.uuid4().hex}"
    yield value
    redis_client.delete(f"notifier:breaker:{value}")


def make(
    client: redis.Redis, name: str, *, open_seconds: float = 0.3, probe_seconds: float = 10
) -> CircuitBreaker:
    return CircuitBreaker(
        client,
        name,
        failure_threshold=3,
        open_seconds=open_seconds,
        probe_timeout_seconds=probe_seconds,
    )


def test_opens_after_the_threshold_of_consecutive_failures(
    redis_client: redis.Redis, name: str
) -> None:
    breaker = make(redis_client, name, open_seconds=10)

    opened = [breaker.record_failure() for _ in range(3)]

    assert opened == [False, False, True]
    assert breaker.state() == OPEN
    permit = breaker.allow()
    assert not permit.allowed
    assert 9 < permit.wait <= 10


def test_a_success_resets_the_consecutive_count(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()

    assert breaker.state() == CLOSED
    assert breaker.allow().allowed


def test_half_open_lets_exactly_one_probe_through(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name, open_seconds=0.2)
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.25)
    assert breaker.state() == HALF_OPEN
    permits = []
    lock = threading.Lock()

    def ask() -> None:
        permit = breaker.allow()
        with lock:
            permits.append(permit)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(p.allowed for p in permits) == 1
    assert [p.probe for p in permits if p.allowed] == [True]
    assert all(0 < p.wait <= 10 for p in permits if not p.allowed)


def test_probe_success_closes(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name, open_seconds=0.1)
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.15)
    assert breaker.allow().probe

    breaker.record_success()

    assert breaker.state() == CLOSED
    assert all(breaker.allow().allowed for _ in range(5))


def test_probe_failure_opens_again_for_the_full_period(
    redis_client: redis.Redis, name: str
) -> None:
    breaker = make(redis_client, name, open_seconds=0.2)
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.25)
    assert breaker.allow().probe

    assert breaker.record_failure() is True

    assert breaker.state() == OPEN
    permit = breaker.allow()
    assert not permit.allowed
    assert 0 < permit.wait <= 0.2


def test_failures_while_open_do_not_extend_it(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name, open_seconds=0.3)
    for _ in range(3):
        breaker.record_failure()
    # Calls that were in flight when it opened report late.
    assert breaker.record_failure() is False
    time.sleep(0.35)

    assert breaker.allow().probe


def test_an_unused_probe_is_given_back(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name, open_seconds=0.1)
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.15)
    assert breaker.allow().probe
    assert not breaker.allow().allowed

    breaker.release_probe()

    assert breaker.allow().probe


def test_a_dead_probers_slot_expires(redis_client: redis.Redis, name: str) -> None:
    breaker = make(redis_client, name, open_seconds=0.1, probe_seconds=0.5)
    for _ in range(3):
        breaker.record_failure()
    time.sleep(0.15)
    assert breaker.allow().probe
    time.sleep(0.55)  # the probe timeout passes without a verdict

    assert breaker.allow().probe


def test_state_is_shared_between_clients(redis_client: redis.Redis, name: str) -> None:
    other = redis.Redis.from_url(settings.REDIS_URL)  # as another worker process would
    first = make(redis_client, name, open_seconds=10)
    second = make(other, name, open_seconds=10)

    first.record_failure()
    second.record_failure()
    first.record_failure()

    assert not second.allow().allowed
    other.close()
