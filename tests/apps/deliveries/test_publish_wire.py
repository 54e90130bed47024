"""The publish's MULTI/EXEC, packed by the broker adapter itself, is byte for byte what
redis-py's transaction pipeline sends, and its answers are handled as the pipeline handles
them (the first error raised, a connection left mid-transaction dropped, no connection taken
before there is a transaction to send). The task messages' Celery configuration, read once
and kept, follows a change of it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from apps.core import broker
from apps.deliveries import queueing
from apps.deliveries.queueing import LEDGER_KEY, _MessageConf, _messages
from config.celery import app
from notifier.queues import queue_name
from tests.support.queues import transaction_answer_lost


def test_the_transaction_is_the_bytes_redis_pys_pipeline_sends(clean_redis: redis.Redis) -> None:
    connection = broker.publish_client().connection_pool.get_connection()
    try:
        due = time.time() + 1 / 3  # a float with every digit of its repr
        commands: list[tuple[Any, ...]] = [
            (b"MULTI",),
            (b"ZADD", LEDGER_KEY, due, "d-1", due, "d-ü"),
            (b"LPUSH", "notifier.sms.high\x06\x163", '{"body": "é😀"}'),
            (b"LPUSH", "q", "x" * 70_000),  # past redis-py's buffer cutoff: sent in parts
            (b"EXEC",),
        ]
        theirs = b"".join(bytes(part) for part in connection.pack_commands(commands))

        assert broker._packed(commands, connection.encoder) == theirs
    finally:
        broker.publish_client().connection_pool.release(connection)


def test_a_publish_writes_its_ledger_entries_and_messages(clean_redis: redis.Redis) -> None:
    messages = _messages([(queue_name("sms", "high"), ["d-1", "d-2"])], countdown=None)

    broker.messages_publish(messages, ledger_ids=["d-1", "d-2", "d-1"], due=12.5)

    assert clean_redis.zrange(LEDGER_KEY, 0, -1, withscores=True) == [
        (b"d-1", 12.5),
        (b"d-2", 12.5),
    ]
    [(key, payload)] = messages
    assert clean_redis.lrange(key, 0, -1) == [payload.encode()]


def test_an_error_in_the_transaction_is_raised_and_the_next_publish_goes_through(
    clean_redis: redis.Redis,
) -> None:
    """EXEC runs every command; one failing (the ledger's key of the wrong type) is raised, as
    the pipeline raised it, and the rest of the transaction stays written."""
    clean_redis.set(LEDGER_KEY, "not a sorted set")
    messages = _messages([(queue_name("email", "normal"), ["d-1"])], countdown=None)

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        broker.messages_publish(messages, ledger_ids=["d-1"], due=1.0)

    [(key, _)] = messages
    assert clean_redis.llen(key) == 1  # Redis ran the rest of the transaction
    clean_redis.delete(LEDGER_KEY)
    broker.messages_publish(messages, ledger_ids=["d-1"], due=2.0)
    assert (clean_redis.llen(key), clean_redis.zscore(LEDGER_KEY, "d-1")) == (2, 2.0)


def test_a_publish_left_mid_answers_does_not_hand_them_to_the_next(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish whose answers were not read (lost: the transaction ran) drops its connection:
    the next publish on the same pool reads its own answers, not the first one's."""
    email, sms = queue_name("email", "normal"), queue_name("sms", "high")
    first = _messages([(email, ["d-1"])], countdown=None)
    second = _messages([(email, ["d-2", "d-3"]), (sms, ["d-4"])], countdown=None)
    lost = transaction_answer_lost(monkeypatch, redis.TimeoutError)
    with pytest.raises(redis.TimeoutError):
        broker.messages_publish(first, ledger_ids=["d-1"], due=1.0)
    monkeypatch.undo()

    # One more command than the first: its answers read as this one's would not add up.
    broker.messages_publish(second, ledger_ids=["d-2", "d-3", "d-4"], due=2.0)

    assert lost == [1]
    assert clean_redis.zrange(LEDGER_KEY, 0, -1, withscores=True) == [
        (b"d-1", 1.0),
        (b"d-2", 2.0),
        (b"d-3", 2.0),
        (b"d-4", 2.0),
    ]
    [(email_key, _)], [_, (sms_key, _)] = first, second
    assert (clean_redis.llen(email_key), clean_redis.llen(sms_key)) == (2, 1)


def test_a_publish_of_nothing_sends_nothing(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = transaction_answer_lost(monkeypatch, redis.TimeoutError)  # MULTI/EXEC packets only

    broker.messages_publish([], ledger_ids=[], due=1.0)

    assert sent == []
    assert clean_redis.dbsize() == 0


@pytest.mark.parametrize(
    ("messages", "raised"),
    [([], None), ([("notifier.sms.high", "x", "one too many")], ValueError)],
    ids=["nothing-to-send", "malformed-message"],
)
def test_no_connection_is_taken_before_the_transaction_is_built(
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    messages: list[Any],
    raised: type[Exception] | None,
) -> None:
    """Nothing to send takes no connection from the pool, and an argument the transaction
    cannot be built from is raised before one is taken (none leaks)."""
    pool = broker.publish_client().connection_pool
    taken: list[int] = []
    real = pool.get_connection
    monkeypatch.setattr(pool, "get_connection", lambda: taken.append(1) or real())

    if raised is None:
        broker.messages_publish(messages, ledger_ids=[], due=1.0)
    else:
        with pytest.raises(raised):
            broker.messages_publish(messages, ledger_ids=["d-1"], due=1.0)

    assert taken == []
    assert clean_redis.dbsize() == 0


def _priority(queue: str) -> int:
    [(_, payload)] = _messages([(queue, ["d-1"])], countdown=None)
    return int(json.loads(payload)["properties"]["priority"])


def test_the_message_configuration_is_kept_until_it_changes(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    queue = queue_name("email", "normal")
    assert _MessageConf.read() is _MessageConf.read()  # kept
    configured = _priority(queue)
    assert configured not in (6, 9)

    settings.CELERY_TASK_DEFAULT_PRIORITY = 6  # a Django setting, as override_settings
    assert _priority(queue) == 6
    assert queueing._message_conf  # kept again

    # Celery's own configuration (`app.conf[key] = value` writes there; set in `changes`
    # itself so that undoing it takes it out again rather than pinning the old value)
    monkeypatch.setitem(app.conf.changes, "task_default_priority", 9)
    assert _priority(queue) == 9
    monkeypatch.undo()
    assert _priority(queue) == 6


def test_a_read_a_setting_change_overtook_is_not_kept(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A read under way when a setting changes (another thread's) returns what it read, but
    does not keep it: the next read sees the change."""
    real = _MessageConf._read
    reads: list[int] = []

    def racing(cls: type[_MessageConf]) -> _MessageConf:
        reads.append(1)
        read = real()
        if len(reads) == 1:  # the old configuration read, then a setting changed
            settings.CELERY_TASK_DEFAULT_PRIORITY = 6
        return read

    monkeypatch.setattr(_MessageConf, "_read", classmethod(racing))
    queueing._message_conf.clear()

    assert _MessageConf.read().priority not in (6, 9)
    assert _MessageConf.read().priority == 6
    assert reads == [1, 1]


def test_compression_set_in_settings_applies_at_once(settings: Any) -> None:
    _MessageConf.read()
    settings.CELERY_TASK_COMPRESSION = "gzip"

    [(_, payload)] = _messages([(queue_name("sms", "high"), ["d-1"])], countdown=None)

    assert json.loads(payload)["headers"]["compression"] == "application/x-gzip"
