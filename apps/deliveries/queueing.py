"""Publishing send tasks. Called from services inside `transaction.on_commit` only.

Beside each publish, the delivery id goes into a ledger on the broker's Redis (a sorted set
scored by the time the message becomes due). The reconciler reads it to tell a delivery whose
message is merely waiting behind a backlog from one whose message is gone: a flush or loss of
the broker's data takes the ledger with it, so those deliveries show as missing and are
re-queued, while a long backlog is left alone instead of being multiplied. An entry is not
removed when its message is consumed: it is kept until it ages out, so an entry older than the
row's last queueing belongs to an earlier message and proves nothing (`ledger_missing`).

Rows are committed before their messages are published: a publish that fails then (the broker
is down) is logged and counted (`notifier_publish_failures`) and left to the reconciler,
never turned into an error for whoever committed them (`publish_sends_after_commit`).

The ledger, kombu's bookkeeping and the Redis clients are the broker adapter's
(`apps.core.broker`); this module decides what to publish and what the ledger means.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from celery import current_app as app
from celery.utils import uuid
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from kombu.compression import compress
from kombu.entity import maybe_delivery_mode
from kombu.serialization import dumps
from prometheus_client import Counter

# LEDGER_KEY and ledger_forget_before are re-exported: the reconciler and tests import them here.
from apps.core.broker import LEDGER_KEY as LEDGER_KEY
from apps.core.broker import (
    NotSent,
    kombu_envelope,
    ledger_due,
    ledger_forget,
    messages_publish,
    unacked_payloads_before,
)
from apps.core.broker import ledger_forget_before as ledger_forget_before
from notifier.queues import queue_name

logger = logging.getLogger(__name__)

SEND_TASK = "deliveries.send"
# Messages written to the broker in one transaction (and round trip).
PUBLISH_BATCH = 500
# (Redis list key, kombu's JSON envelope)
Message = tuple[str, str]

PUBLISH_FAILURES = Counter(
    "notifier_publish_failures",
    "Deliveries committed but not published (broker down): the reconciler re-queues them.",
)


def send_batches(items: Iterable[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    """(queue, delivery ids) per send message: deliveries of one channel and priority travel
    together, in the order given, up to SEND_BATCH_SIZE per message but spread over at least
    SEND_BATCH_SPREAD messages while that leaves more than one per message (so that a small
    bulk still goes out on as many worker threads as it can use)."""
    by_queue: dict[str, list[str]] = {}
    for delivery_id, channel, priority in items:
        by_queue.setdefault(queue_name(channel, priority), []).append(delivery_id)
    cap = max(int(settings.SEND_BATCH_SIZE), 1)
    spread = max(int(settings.SEND_BATCH_SPREAD), 1)
    batches = []
    for queue, ids in by_queue.items():
        size = min(cap, -(-len(ids) // spread))  # ceil
        batches += [(queue, ids[i : i + size]) for i in range(0, len(ids), size)]
    return batches


def publish_sends(
    items: Iterable[tuple[str, str, str]],
    *,
    countdown: float | None = None,
    fail_fast: bool = False,
) -> None:
    """Publish send tasks for these (delivery id, channel, priority), batched per queue
    (`send_batches`), with their ledger entries: one MULTI/EXEC on the broker per
    PUBLISH_BATCH messages (one round trip for a request's messages), each at most once
    (`messages_publish`). `fail_fast` (a request's publish): the broker's 1 s client and one
    try at connecting; else the waits of `_connect_waits` between tries at connecting."""
    batches = send_batches(items)
    due = time.time() + (countdown or 0)
    waits = () if fail_fast else _connect_waits()
    for start in range(0, len(batches), PUBLISH_BATCH):
        chunk = batches[start : start + PUBLISH_BATCH]
        ids = [delivery_id for _, batch in chunk for delivery_id in batch]
        try:
            # The ledger entries go in the same transaction as the messages, before them:
            # should Redis lose its data, it loses both and the reconciler re-sends.
            messages_publish(
                _messages(chunk, countdown=countdown),
                ledger_ids=ids,
                due=due,
                fail_fast=fail_fast,
                connect_waits=waits,
            )
        except NotSent:
            raise  # nothing written: no entry to take back
        except Exception:
            # Unknown whether EXEC ran (an answer lost on the way): let the reconciler see
            # them as missing; should the messages be there, the claim drops the duplicate.
            ledger_forget(ids, fail_fast=fail_fast)
            raise


def _messages(batches: list[tuple[str, list[str]]], *, countdown: float | None) -> list[Message]:
    """Celery's own task message for each batch (`create_task_message`, the protocol the
    workers read), in kombu's envelope for its queue (`kombu_envelope`), written to Redis by
    the broker adapter in one transaction. `send_task` per message also routed, merged options
    and fired publish signals, and a kombu producer declared the queue and built a Redis client
    for its batch: most of the CPU of a one-message POST, and nothing a send task needs.

    What this bypasses of `send_task` (keep it true if any of these starts to matter here):
    - the `before_task_publish` / `after_task_publish` signals, so sentry-sdk's Celery
      integration adds no trace headers: a send task starts a new trace, not the request's;
    - `task_routes`: the queue is chosen here (`notifier.queues.queue_name`), not by routing;
    - `parent_id` / `root_id`: published from inside a task (the reconciler, a retry), the
      message does not name that task as its parent;
    - kombu's producer: the queue is not declared (a worker declares the queues it consumes;
      publishing to the anonymous exchange needs no binding); Celery's publish retry policy
      spaces only the tries at connecting (`_connect_waits`): a sent transaction is never
      sent again."""
    conf = _MessageConf.read()
    return [
        _task_message(SEND_TASK, queue, [batch], {}, countdown, conf) for queue, batch in batches
    ]


@dataclass(frozen=True)
class _MessageConf:
    """What a task message takes from Celery's configuration. Each read goes through Celery's
    configuration view down to Django's settings (a key tried under each of its names in each
    layer: about 0.1 ms for these, more than building a message), so it is read once and kept
    (`read`) until the configuration changes."""

    create: Callable[..., Any]
    argsrepr_maxsize: int
    kwargsrepr_maxsize: int
    serializer: str
    compression: str | None
    priority: int
    delivery_mode: int

    @classmethod
    def read(cls) -> _MessageConf:
        """The configuration as it is now: kept from the last read while Celery's own changes
        (`app.conf.changes`: what `app.conf[key] = value` writes) are the same, and until a
        Django setting changes (`setting_changed`: override_settings, the tests' `settings`).
        A setting changed without that signal (a plain `monkeypatch.setattr(settings,
        "CELERY_...", ...)`) is not seen while a read is kept."""
        conf = app.conf
        kept = _message_conf.get("kept")
        if kept is not None and kept[0] is conf and kept[1] == conf.changes:
            return kept[2]
        generation = _message_conf_generation[0]
        read = cls._read()
        with _message_conf_lock:
            # A setting changed during the read (another thread's override): what was read may
            # be the old configuration, not to be kept.
            if _message_conf_generation[0] == generation:
                _message_conf["kept"] = (conf, dict(conf.changes or {}), read)
        return read

    @classmethod
    def _read(cls) -> _MessageConf:
        amqp, conf = app.amqp, app.conf
        return cls(
            create=amqp.create_task_message,
            argsrepr_maxsize=amqp.argsrepr_maxsize,
            kwargsrepr_maxsize=amqp.kwargsrepr_maxsize,
            serializer=conf.task_serializer,
            compression=conf.task_compression,
            priority=int(conf.task_default_priority or 0),
            delivery_mode=int(maybe_delivery_mode(conf.task_default_delivery_mode) or 2),
        )


# The last `_MessageConf.read`: (Celery's configuration, its changes then, the values read).
_message_conf: dict[str, tuple[Any, dict[str, Any], _MessageConf]] = {}
# Counts Django's setting changes: a read is kept only if no setting changed since it began
# (checked and stored under the lock the change takes, so none comes in between).
_message_conf_generation = [0]
_message_conf_lock = threading.Lock()


@receiver(setting_changed)
def _message_conf_forget(**_: Any) -> None:
    with _message_conf_lock:
        _message_conf_generation[0] += 1
        _message_conf.clear()


def _task_message(
    name: str,
    queue: str,
    args: list[Any],
    kwargs: dict[str, Any],
    countdown: float | None,
    conf: _MessageConf | None = None,
) -> Message:
    conf = conf or _MessageConf.read()
    headers, properties, body, _ = conf.create(
        uuid(),
        name,
        args,
        kwargs,
        countdown=countdown,
        # Celery's saferepr of a batch of ids was a fifth of the publish; repr is the same
        # text for a list of strings, cut at Celery's length.
        argsrepr=_short_repr(args, conf.argsrepr_maxsize),
        kwargsrepr=_short_repr(kwargs, conf.kwargsrepr_maxsize),
    )
    content_type, content_encoding, serialized = dumps(body, serializer=conf.serializer)
    payload: bytes = (
        serialized if isinstance(serialized, bytes) else serialized.encode(content_encoding)
    )
    if conf.compression:
        payload, headers["compression"] = compress(payload, conf.compression)
    return kombu_envelope(
        queue=queue,
        body=payload,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        properties=properties,
        priority=conf.priority,
        delivery_mode=conf.delivery_mode,
    )


def task_publish(
    name: str,
    *,
    queue: str,
    args: list[Any],
    kwargs: dict[str, Any],
    countdown: float | None = None,
    fail_fast: bool = False,
) -> None:
    """Publish one task message (not a send: no ledger entry) as send messages are published:
    at most once, and with `fail_fast` (a request's publish) one short try at connecting
    instead of the retry policy's. Raises NotSent (nothing written) or redis.RedisError."""
    messages_publish(
        [_task_message(name, queue, args, kwargs, countdown)],
        ledger_ids=[],
        due=time.time(),
        fail_fast=fail_fast,
        connect_waits=() if fail_fast else _connect_waits(),
    )


def _connect_waits() -> list[float]:
    """The waits between tries at getting a broker connection, spaced as Celery's publish
    retry policy (task_publish_retry, task_publish_retry_policy) spaces kombu's `ensure`.
    Only connecting is tried again (`messages_publish`): unlike Celery's policy, a publish
    whose transaction was sent is never repeated."""
    conf = app.conf
    if not conf.task_publish_retry:
        return []
    policy = dict(conf.task_publish_retry_policy or {})
    start, step = float(policy.get("interval_start", 0)), float(policy.get("interval_step", 1))
    most = float(policy.get("interval_max", 1))
    return [min(start + i * step, most) for i in range(int(policy.get("max_retries", 3) or 0))]


def _short_repr(value: object, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def publish_sends_after_commit(
    items: Iterable[tuple[str, str, str]],
    *,
    countdown: float | None = None,
    fail_fast: bool | None = None,
) -> None:
    """`publish_sends` for rows already committed (an on_commit callback, or after an
    autocommit write): a failure is logged and counted, not raised. The rows stay `queued` or
    `retrying` with no ledger entry newer than them, so the reconciler re-queues them within
    RECONCILE_AFTER_SECONDS of the broker's return. `fail_fast` defaults to whether this runs
    within `request_publishes`."""
    items = list(items)
    if fail_fast is None:
        fail_fast = _request_path.get()
    try:
        publish_sends(items, countdown=countdown, fail_fast=fail_fast)
    except Exception as exc:  # whatever it was, the caller's work is done and kept
        PUBLISH_FAILURES.inc(len(items))
        logger.warning(
            "publish failed after commit; left to the reconciler: %s: %s",
            type(exc).__name__,
            exc,
            extra={"deliveries": len(items)},
        )


_request_path: ContextVar[bool] = ContextVar("publish_on_a_request_path", default=False)


@contextmanager
def request_publishes() -> Iterator[None]:
    """Within this block (an API request's work) publishes are fail-fast: the broker's 1 s
    client, one try, whatever the retry policy (../shared/DESIGN.md: the rows are committed
    and the reconciler re-queues what the broker did not take). A hung broker then costs a
    request about a second, not retries times the socket timeout."""
    reset = _request_path.set(True)
    try:
        yield
    finally:
        _request_path.reset(reset)


def request_path() -> bool:
    """Whether `request_publishes` is in force here (an on_commit callback registered now
    captures it: it may run after the block, when the request's outer transaction commits)."""
    return _request_path.get()


def ledger_missing(queued_at: Mapping[str, float]) -> set[str]:
    """Of these delivery ids (each with the time its row was last queued, a Unix timestamp),
    those with no live message: never recorded, lost with the broker's data, forgotten by
    `ledger_forget_before`, or recorded for an earlier message only (due before the row was
    queued again: that message was consumed, and the one meant for the new queueing was never
    published). A publish is always recorded after its row is written, so a live entry is
    never older than the row."""
    ids = list(queued_at)
    if not ids:
        return set()
    scores = ledger_due(ids)
    return {
        delivery_id
        for delivery_id, score in zip(ids, scores, strict=True)
        if score is None or score < queued_at[delivery_id]
    }


def held_since_before(cutoff: float) -> set[str]:
    """Delivery ids whose send message a worker fetched before `cutoff` and never acknowledged.

    A live worker claims what it fetches within moments (prefetch is 1), so a queued delivery
    whose message has sat unacknowledged that long belongs to a worker that died (SIGKILL, OOM):
    Redis would give the message back only after the visibility timeout. Reads kombu's
    bookkeeping; anything it cannot parse is skipped (the age limit above still applies).
    """
    held: set[str] = set()
    for payload in unacked_payloads_before(cutoff):
        held.update(_send_task_delivery_ids(payload))
    return held


def _send_task_delivery_ids(payload: bytes | str | None) -> list[str]:
    """The ids in an unacknowledged message (kombu keeps [message, exchange, routing key])."""
    try:
        return send_message_delivery_ids(json.loads(payload or b"null")[0])
    except (ValueError, TypeError, KeyError, IndexError):
        return []


def send_message_delivery_ids(message: Any) -> list[str]:
    """The delivery ids a send message (kombu's JSON envelope) carries; [] for anything else."""
    try:
        if message["headers"].get("task") != SEND_TASK:
            return []
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        ids = json.loads(body)[0][0]  # args[0]: a list of ids (one id before batching)
        return [str(pk) for pk in ids] if isinstance(ids, list) else [str(ids)]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return []
