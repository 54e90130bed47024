"""Retries on a real socket: 429 and 503 with Retry-After (seconds and HTTP-date), connection
refused until the server comes up, the idempotency key kept across retries, and answers lost
after the request reached the server (retried only for calls safe to repeat)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from notifier_client import (
    APIConnectionError,
    AsyncNotifierClient,
    NotifierClient,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
    ValidationError,
)
from tests.scripted import Reply, ScriptedServer, unused_port

ACCEPTED = Reply(202, {"id": "n-1", "status": "accepted", "deliveries": []})
QUICK = RetryPolicy(max_attempts=4, backoff_base=0.05, backoff_cap=0.2)


@pytest.fixture
def servers() -> Iterator[list[ScriptedServer]]:
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[ScriptedServer], *script: Reply, port: int = 0) -> ScriptedServer:
    server = ScriptedServer(list(script), port=port)
    servers.append(server)
    return server


def test_429_with_retry_after_seconds_then_success(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(429, {"code": "throttled"}, {"Retry-After": "1"}), ACCEPTED)

    with NotifierClient(server.url, "key", retry=QUICK) as client:
        accepted = client.send("welcome", recipient="user-1")

    assert accepted["id"] == "n-1"
    first, second = server.seen
    assert (first.method, first.path) == ("POST", "/api/v1/notifications")
    assert second.at - first.at >= 1.0  # never sooner than the service asked
    keys = {seen.headers["idempotency-key"] for seen in server.seen}
    assert len(keys) == 1  # the retry is the same request: safe
    assert first.headers["authorization"] == "Bearer key"


def test_503_with_an_http_date_then_success(servers: list[ScriptedServer]) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    server = serve(servers, Reply(503, {"code": "unavailable"}, {"Retry-After": when}), ACCEPTED)

    with NotifierClient(server.url, "key", retry=QUICK) as client:
        assert client.get_notification("n-1")["id"] == "n-1"

    first, second = server.seen
    # The date has a one-second resolution: at least about one second later.
    assert second.at - first.at >= 0.9


def test_503_until_the_attempts_are_spent(servers: list[ScriptedServer]) -> None:
    body = {"code": "unavailable", "message": "Shedding load.", "fields": {}}
    server = serve(servers, Reply(503, body, {"Retry-After": "0"}))

    with (
        NotifierClient(server.url, "key", retry=QUICK) as client,
        pytest.raises(ServiceUnavailableError) as unavailable,
    ):
        client.send("welcome", recipient="user-1")

    assert len(server.seen) == 4
    assert unavailable.value.retry_after == 0
    assert (unavailable.value.code, unavailable.value.message) == ("unavailable", "Shedding load.")


def test_a_retry_after_too_long_is_not_waited_out(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(429, {"code": "throttled"}, {"Retry-After": "3600"}), ACCEPTED)

    started = time.monotonic()
    with (
        NotifierClient(server.url, "key", retry=QUICK) as client,
        pytest.raises(RateLimitedError) as limited,
    ):
        client.send("welcome", recipient="user-1")

    assert time.monotonic() - started < 2
    assert len(server.seen) == 1
    assert limited.value.retry_after == 3600


def test_a_400_is_not_retried(servers: list[ScriptedServer]) -> None:
    body = {"code": "invalid", "message": "Invalid input.", "fields": {"template": ["Unknown."]}}
    server = serve(servers, Reply(400, body), ACCEPTED)

    with (
        NotifierClient(server.url, "key", retry=QUICK) as client,
        pytest.raises(ValidationError) as invalid,
    ):
        client.send("nope", recipient="user-1")

    assert len(server.seen) == 1
    assert invalid.value.fields == {"template": ["Unknown."]}


def test_connection_refused_until_the_server_is_up(servers: list[ScriptedServer]) -> None:
    port = unused_port()
    policy = RetryPolicy(max_attempts=20, backoff_base=0.1, backoff_cap=0.3)
    later = threading.Timer(0.5, lambda: serve(servers, ACCEPTED, port=port))
    later.start()
    try:
        with NotifierClient(f"http://127.0.0.1:{port}", "key", retry=policy) as client:
            accepted = client.send("welcome", recipient="user-1", idempotency_key="mine")
    finally:
        later.join()

    assert accepted["id"] == "n-1"
    (seen,) = servers[0].seen
    assert seen.headers["idempotency-key"] == "mine"


def test_connection_refused_for_good_is_a_connection_error() -> None:
    port = unused_port()
    with (
        NotifierClient(f"http://127.0.0.1:{port}", "key", retry=QUICK) as client,
        pytest.raises(APIConnectionError, match="4 attempts"),
    ):
        client.get_recipient("user-1")


def test_the_async_client_retries_the_same_way(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(429, {"code": "throttled"}, {"Retry-After": "0.3"}), ACCEPTED)

    async def send() -> str:
        async with AsyncNotifierClient(server.url, "key", retry=QUICK) as client:
            return str((await client.send("welcome", recipient="user-1"))["id"])

    assert asyncio.run(send()) == "n-1"
    first, second = server.seen
    assert second.at - first.at >= 0.3
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


REPLAYED = Reply(200, {"id": 7, "replayed_by": "ops"})


def test_a_lost_answer_to_send_is_retried_with_the_same_key(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(202, ACCEPTED.body, delay=1.5), ACCEPTED)

    with NotifierClient(server.url, "key", timeout=0.3, retry=QUICK) as client:
        accepted = client.send("welcome", recipient="user-1")

    assert accepted["id"] == "n-1"
    first, second = server.seen
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body


def test_a_send_that_fails_for_good_carries_its_key(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(202, ACCEPTED.body, delay=1.5))
    policy = RetryPolicy(max_attempts=2, backoff_base=0.05)

    with (
        NotifierClient(server.url, "key", timeout=0.3, retry=policy) as client,
        pytest.raises(APIConnectionError) as lost,
    ):
        client.send("welcome", recipient="user-1")

    keys = {seen.headers["idempotency-key"] for seen in server.seen}
    assert keys == {lost.value.idempotency_key}  # the one to send again with
    assert len(server.seen) == 2


def test_an_error_answer_to_a_send_carries_its_key(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(503, {"code": "unavailable"}, {"Retry-After": "0"}))

    with (
        NotifierClient(server.url, "key", retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(ServiceUnavailableError) as unavailable,
    ):
        client.send("welcome", recipient="user-1", idempotency_key="mine")
    with (
        NotifierClient(server.url, "key", retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(ServiceUnavailableError) as read,
    ):
        client.get_notification("n-1")
    nobody = f"http://127.0.0.1:{unused_port()}"
    with NotifierClient(nobody, "k") as client, pytest.raises(APIConnectionError) as refused:
        client.get_topic("t")

    assert unavailable.value.idempotency_key == "mine"
    assert read.value.idempotency_key is None
    assert refused.value.idempotency_key is None


def test_a_lost_answer_to_a_replay_is_not_retried(servers: list[ScriptedServer]) -> None:
    conflict = Reply(409, {"code": "conflict", "message": "Already replayed."})
    server = serve(servers, Reply(200, REPLAYED.body, delay=1.5), conflict)

    with (
        NotifierClient(server.url, "key", timeout=0.3, retry=QUICK) as client,
        pytest.raises(APIConnectionError, match="1 attempts"),
    ):
        client.replay_dead_letter(7)

    assert len(server.seen) == 1  # the replay may have happened: not made twice
    assert "idempotency-key" not in server.seen[0].headers  # the service would ignore one


def test_the_async_client_does_not_retry_a_lost_replay(servers: list[ScriptedServer]) -> None:
    server = serve(servers, Reply(200, {"replayed": 1}, delay=1.5), Reply(200, {"replayed": 0}))

    async def replay() -> None:
        async with AsyncNotifierClient(server.url, "key", timeout=0.3, retry=QUICK) as client:
            await client.replay_dead_letters(ids=[7])

    with pytest.raises(APIConnectionError):
        asyncio.run(replay())
    assert len(server.seen) == 1


def test_a_refused_replay_is_retried(servers: list[ScriptedServer]) -> None:
    port = unused_port()
    policy = RetryPolicy(max_attempts=20, backoff_base=0.1, backoff_cap=0.3)
    later = threading.Timer(0.5, lambda: serve(servers, REPLAYED, port=port))
    later.start()
    try:
        with NotifierClient(f"http://127.0.0.1:{port}", "key", retry=policy) as client:
            assert client.replay_dead_letter(7)["id"] == 7
    finally:
        later.join()

    assert len(servers[0].seen) == 1  # refused attempts never reached it


@pytest.mark.parametrize(
    ("reply", "attempts"),
    [
        (Reply(429, {"code": "throttled"}, {"Retry-After": "0"}), 2),  # the rate limit: before
        (Reply(503, {"code": "overloaded"}, {"Retry-After": "0"}), 2),  # admission: before
        (Reply(503, {"code": "unavailable"}, {"Retry-After": "0"}), 1),  # may be after commit
        (Reply(503, "<html>Bad gateway</html>", {"Retry-After": "0"}), 1),  # unknown
    ],
    ids=["429", "503 overloaded", "503 unavailable", "503 not ours"],
)
def test_which_429_and_503_a_replay_retries(
    servers: list[ScriptedServer], reply: Reply, attempts: int
) -> None:
    server = serve(servers, reply, REPLAYED)

    with NotifierClient(server.url, "key", retry=QUICK) as client:
        if attempts == 1:
            with pytest.raises(ServiceUnavailableError):
                client.replay_dead_letter(7)
        else:
            assert client.replay_dead_letter(7)["id"] == 7

    assert len(server.seen) == attempts
