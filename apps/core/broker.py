"""The broker adapter: the one place that knows how this service talks to Redis.

It owns
- the Redis clients: one factory (`redis_client`), one client and connection pool per URL and
  timeout profile and process, for the broker (CELERY_BROKER_URL: queues, unacknowledged
  messages, the publish ledger) and for the service's own Redis (REDIS_URL: rate limits,
  circuit breakers, API throttles);
- kombu's Redis key layout: a queue is one list per message-priority step, and the messages a
  worker fetched but has not acknowledged sit in `unacked` / `unacked_index`;
- kombu's message envelope on Redis (`kombu_envelope`): what its virtual channel stores for a
  published message, so that messages can be written without a kombu producer;
- queue depths, the unacknowledged messages and the publish ledger read and written there,
  and the publish itself (`messages_publish`: ledger entries and messages in one MULTI/EXEC).

The layout and encoding constants must match kombu's channel under the production transport
options (the system check deliveries.E002). The messages travel on this module's redis-py
client, not kombu's: TLS and other connection options must be in the broker URL this client
reads (rediss://...), not only in kombu's `broker_use_ssl` / transport options (E003).

Queue names are `notifier.queues` (pure, shared with config). The task messages themselves are
Celery's (`celery.current_app`, in apps.deliveries.queueing); this module never imports config.
A client is cached per URL, so a changed setting (a test pointing the broker elsewhere) gets
a new client without any cache to clear.
"""

from __future__ import annotations

import base64
import bisect
import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from notifier.queues import ALL_QUEUES

logger = logging.getLogger(__name__)

# kombu's Redis transport files a message with priority p under "<queue>\x06\x16<step>" (step 0
# is the bare queue name). Whether a message carries the default priority 5 depends on whether
# the publishing process imported the task module: count every step.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
# How kombu's virtual channel encodes a message body in its envelope (`kombu_envelope`).
BODY_ENCODING = "base64"
# Every message a worker has fetched but not acknowledged: a hash of delivery tag -> payload
# ([message, exchange, routing key]) and a sorted set of delivery tag -> fetch time.
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"
# Delivery id -> the time its send message becomes due (apps.deliveries.queueing).
LEDGER_KEY = "notifier:published"

DEFAULT_TIMEOUT_SECONDS = 5.0
# For answers a request or a probe waits on: a Redis that does not answer within this is
# reported at once, not after redis-py's retries and backoff.
FAIL_FAST_TIMEOUT_SECONDS = 1.0


# --- clients ---------------------------------------------------------------------------------


def redis_url_shown(url: str) -> str:
    """`url` with its password (if any) masked, for messages to people."""
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@") if password else url


@lru_cache(maxsize=32)
def redis_client(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    connect_timeout: float | None = None,
    fail_fast: bool = False,
) -> redis.Redis:
    """The one Redis client factory: a client (thread-safe, with its pool) per URL and profile
    per process. `fail_fast` turns redis-py's retries off."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout if connect_timeout is None else connect_timeout,
    }
    if fail_fast:
        options["retry"] = Retry(NoBackoff(), 0)
    return redis.Redis.from_url(url, **options)


def broker_client(*, fail_fast: bool = False) -> redis.Redis:
    """The broker's Redis: the queues, kombu's bookkeeping and the publish ledger (which must
    share the queues' fate)."""
    if fail_fast:
        return redis_client(
            settings.CELERY_BROKER_URL, timeout=FAIL_FAST_TIMEOUT_SECONDS, fail_fast=True
        )
    return redis_client(settings.CELERY_BROKER_URL)


def service_client(*, fail_fast: bool = False) -> redis.Redis:
    """The service's own Redis (REDIS_URL): rate limits, circuit breakers, API throttles."""
    if fail_fast:
        return redis_client(
            settings.REDIS_URL,
            timeout=FAIL_FAST_TIMEOUT_SECONDS,
            connect_timeout=FAIL_FAST_TIMEOUT_SECONDS / 2,
            fail_fast=True,
        )
    return redis_client(settings.REDIS_URL)


def clients_forget() -> None:
    """Drop every cached client (tests that restart a Redis on the same URL)."""
    redis_client.cache_clear()


# --- kombu's queues --------------------------------------------------------------------------


def queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps for one queue, one per priority step."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def queue_depths(
    queues: Iterable[str] | None = None, *, client: redis.Redis | None = None
) -> dict[str, int]:
    """Messages waiting in each queue (default: all of them), now, in one pipelined round trip.
    Raises redis.RedisError when the broker does not answer."""
    names = list(ALL_QUEUES if queues is None else queues)
    client = client or broker_client(fail_fast=True)
    with client.pipeline(transaction=False) as pipe:
        for queue in names:
            for key in queue_keys(queue):
                pipe.llen(key)
        sizes = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {q: int(sum(sizes[i * steps : (i + 1) * steps])) for i, q in enumerate(names)}


def queued_messages(
    queues: Iterable[str] | None = None, *, client: redis.Redis | None = None
) -> Iterator[tuple[str, Any]]:
    """(queue, kombu's decoded JSON envelope) of every message waiting (tests, bench)."""
    client = client or broker_client()
    for queue in ALL_QUEUES if queues is None else queues:
        for key in queue_keys(queue):
            for raw in client.lrange(key, 0, -1):
                yield queue, json.loads(raw)


def unacked_count(*, client: redis.Redis | None = None) -> int:
    """Messages fetched by some worker and not acknowledged yet."""
    return int((client or broker_client()).hlen(UNACKED))


def unacked_payloads_before(cutoff: float) -> list[bytes | str | None]:
    """The raw payloads of messages a worker fetched before `cutoff` (a Unix time) and never
    acknowledged, as kombu keeps them ([message, exchange, routing key] in JSON)."""
    client = broker_client()
    tags = [
        tag
        for tag in client.zrangebyscore(UNACKED_INDEX, "-inf", cutoff)
        if isinstance(tag, bytes | str)
    ]
    if not tags:
        return []
    return list(client.hmget(UNACKED, tags))


def priority_key(queue: str, priority: int) -> str:
    """The list kombu files a message of this priority (0-9) under: its step's list."""
    step = PRIORITY_STEPS[bisect.bisect(PRIORITY_STEPS, max(0, min(int(priority), 9))) - 1]
    return queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}"


def kombu_envelope(
    *,
    queue: str,
    body: bytes,
    content_type: str,
    content_encoding: str,
    headers: Mapping[str, Any],
    properties: Mapping[str, Any],
    priority: int,
    delivery_mode: int,
) -> tuple[str, str]:
    """(list key, payload) of a message published through kombu's Redis transport to the
    anonymous exchange with `queue` as its routing key: what `Producer.publish` and the virtual
    channel's `prepare_message` / `basic_publish` / `_put` store (body base64-encoded, a fresh
    delivery tag). tests/apps/deliveries/test_post_cost.py compares it with kombu's own."""
    message = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": dict(headers),
        "properties": {
            **properties,
            "delivery_mode": delivery_mode,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": priority,
            "body_encoding": BODY_ENCODING,
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return priority_key(queue, priority), json.dumps(message)


class NotSent(redis.ConnectionError):
    """A publish that sent nothing: the broker could not be reached."""


def publish_client(*, fail_fast: bool = False) -> redis.Redis:
    """The broker's Redis for `messages_publish`: redis-py's own retries off (they re-send a
    command whose answer was lost: a MULTI/EXEC that ran would run again), the request path's
    1 s timeout with `fail_fast`, else the default."""
    timeout = FAIL_FAST_TIMEOUT_SECONDS if fail_fast else DEFAULT_TIMEOUT_SECONDS
    return redis_client(settings.CELERY_BROKER_URL, timeout=timeout, fail_fast=True)


def messages_publish(
    messages: Sequence[tuple[str, str]],
    *,
    ledger_ids: Sequence[str],
    due: float,
    fail_fast: bool = False,
    connect_waits: Sequence[float] = (),
) -> None:
    """Record `ledger_ids` in the publish ledger (due at `due`) and push each (list key,
    payload) from `kombu_envelope`, in one MULTI/EXEC: one round trip, and the entries and the
    messages are kept or lost together.

    At most once per call. Only getting a connection (connect, AUTH, SELECT: nothing of the
    transaction sent yet) is tried again, after each of `connect_waits` seconds. Once the
    transaction is on its way, an error (a read timeout, a connection reset) is raised as it
    is: EXEC may have run, and sending it again would write every message twice (kombu's own
    batch flush never retries either, "delivery is uncertain"). The caller leaves an uncertain
    publish to the reconciler. Raises NotSent when no connection could be had (nothing was
    written), else redis.RedisError."""
    # Built and packed before a connection is taken: nothing to send takes none, and a
    # malformed argument raises here without one to leak.
    commands: list[tuple[Any, ...]] = []
    if ledger_ids:
        # ZADD key score member ...: what redis-py's `zadd` sends for {id: due}.
        ledger = (a for i in dict.fromkeys(ledger_ids) for a in (due, i))
        commands.append((b"ZADD", LEDGER_KEY, *ledger))
    commands += [(b"LPUSH", key, payload) for key, payload in messages]
    if not commands:  # as an empty pipeline: nothing sent
        return
    commands = [(b"MULTI",), *commands, (b"EXEC",)]
    pool = publish_client(fail_fast=fail_fast).connection_pool
    packed = _packed(commands, pool.get_encoder())
    for attempt in range(len(connect_waits) + 1):
        try:
            connection = pool.get_connection()  # connected and checked, nothing sent
            break
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if attempt == len(connect_waits):
                raise NotSent(f"broker unreachable: {exc}") from exc
            time.sleep(connect_waits[attempt])
    sending: Any = connection  # redis-py's Connection: its methods are untyped
    try:
        # Sent and read as redis-py's transaction pipeline sends and reads it (one write, an
        # answer per command), packed here: its general packing and answer handling were a
        # third of a one-message POST's publish.
        sending.send_packed_command([packed])
        _transaction_answers(connection, len(commands))
    except BaseException:
        # Mid-transaction (answers unread, or an error queued): this connection's state is
        # unknown; it goes, as redis-py's pipeline would drop it.
        sending.disconnect()
        raise
    finally:
        pool.release(connection)


def _packed(commands: Sequence[tuple[Any, ...]], encoder: Any) -> bytes:
    """The commands in RESP (arrays of bulk strings), each argument encoded as redis-py's
    Encoder encodes it: bytes as they are, a str in the client's encoding, a float by its repr
    (those directly, anything else by the Encoder)."""
    encoding, errors = encoder.encoding, encoder.encoding_errors
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = type(arg)
            if kind is bytes:
                data = arg
            elif kind is str:
                data = arg.encode(encoding, errors)
            elif kind is float:
                data = repr(arg).encode()
            else:
                data = encoder.encode(arg)
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _transaction_answers(connection: Any, count: int) -> None:
    """Read MULTI's OK, a QUEUED per command and EXEC's results; raise the first error (a
    command refused when queued, EXECABORT, or one that failed when run) as redis-py does."""
    for _ in range(count - 1):
        connection.read_response()  # raises the ResponseError an error answer is
    results = connection.read_response()
    if not isinstance(results, list) or len(results) != count - 2:
        raise redis.ResponseError(f"unexpected EXEC answer: {results!r}")
    for result in results:
        if isinstance(result, redis.ResponseError):
            raise result


# --- the publish ledger ----------------------------------------------------------------------


def ledger_forget(ids: Sequence[str], *, fail_fast: bool = False) -> None:
    """Take entries back (their publish failed). Best effort."""
    try:
        broker_client(fail_fast=fail_fast).zrem(LEDGER_KEY, *ids)
    except redis.RedisError as exc:
        logger.warning("publish ledger not cleaned up: %s", exc)


def ledger_forget_before(cutoff: float) -> None:
    """Drop entries due before `cutoff`: such a message is taken for lost (and re-sent if its
    delivery is still waiting). Bounds the ledger's size."""
    broker_client().zremrangebyscore(LEDGER_KEY, "-inf", cutoff)


def ledger_due(ids: Sequence[str]) -> list[float | None]:
    """The due time recorded for each id (None: no entry)."""
    if not ids:
        return []
    return [None if s is None else float(s) for s in broker_client().zmscore(LEDGER_KEY, list(ids))]
