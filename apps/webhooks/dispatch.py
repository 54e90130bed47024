"""Getting due messages to the webhooks worker: the dispatch task fans a committed batch out
into one deliver task per message, and the beat sweep (every WEBHOOKS_SWEEP_EVERY_SECONDS, on
the maintenance queue: never behind slow receivers, never delaying the digests' closes) finds
in PostgreSQL what is due and not on its way: retries whose time has come, first attempts whose
publish was lost or held back, and messages whose attempt's worker died (their lease over; dead
if that was the last attempt). Claimed FOR UPDATE SKIP LOCKED, so two sweeps never take the same
rows. Neither publishes more messages for an endpoint than it has free in-flight slots
(slots.py), oldest first: the rest stay pending and undispatched for the sweep, rather than
becoming tasks that would claim them, be refused a slot and write them back (attempts.py). The
tasks already published and not yet started are not counted: a small overshoot, refused then."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import redis
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.core.broker import queue_depths
from apps.webhooks.attempts import max_attempts
from apps.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from apps.webhooks.publish import deliveries_publish
from apps.webhooks.slots import slots_free
from notifier.queues import WEBHOOKS_QUEUE

logger = logging.getLogger(__name__)

M = MessageStatus
# A message published this long ago and still pending is published again (its task was lost)...
REDISPATCH_AFTER_SECONDS = 120.0


def _free_slots(endpoint_ids: Collection[str]) -> dict[str, int]:
    """Each endpoint's free in-flight slots; with Redis failing, 1 each (the sweep goes on)."""
    try:
        return slots_free(endpoint_ids)
    except redis.RedisError:
        logger.warning("webhook slots unknown (Redis); one message per endpoint", exc_info=True)
        return dict.fromkeys(endpoint_ids, 1)


def messages_dispatch(*, message_ids: Sequence[int]) -> int:
    """Publish a deliver task for each pending message, up to its endpoint's free slots, oldest
    first (the dispatch task); the rest are left undispatched for the sweep. The number
    published."""
    rows = list(
        WebhookMessage.objects.filter(id__in=list(message_ids), state=M.PENDING)
        .order_by("next_attempt_at", "id")
        .values_list("id", "endpoint_id")
    )
    free = _free_slots({str(endpoint_id) for _, endpoint_id in rows})
    chosen: list[int] = []
    held_back: list[int] = []
    for pk, endpoint_id in rows:
        left = free[str(endpoint_id)]
        (chosen if left > 0 else held_back).append(pk)
        free[str(endpoint_id)] = left - 1
    if held_back:
        WebhookMessage.objects.filter(id__in=held_back, state=M.PENDING).update(dispatched_at=None)
    deliveries_publish(chosen)
    return len(chosen)


# Per endpoint (with its free slots), its oldest due rows not on their way, and those whose
# attempt's worker died (`sending`, the lease over; their slot's hold is over too).
_CLAIM_SQL = """
SELECT m.id, m.state
FROM unnest(%(endpoints)s::uuid[], %(free)s::int[]) AS f(endpoint_id, free)
CROSS JOIN LATERAL (
    SELECT id, state FROM {table}
    WHERE endpoint_id = f.endpoint_id AND next_attempt_at <= %(now)s AND (
        state = %(sending)s OR (state = %(pending)s AND (
            dispatched_at IS NULL OR (%(redispatch)s AND dispatched_at <= %(lost)s))))
    ORDER BY next_attempt_at
    LIMIT f.free
    FOR UPDATE SKIP LOCKED
) AS m
"""


def _due(*, now: dt.datetime, lost: dt.datetime, redispatch: bool) -> Q:
    """_CLAIM_SQL's condition, for the ORM."""
    on_its_way_lost = Q(dispatched_at__lte=lost) if redispatch else Q(pk__in=[])
    pending = Q(state=M.PENDING) & (Q(dispatched_at__isnull=True) | on_its_way_lost)
    return Q(next_attempt_at__lte=now) & (pending | Q(state=M.SENDING))


def _claim(*, now: dt.datetime, batch: int) -> list[tuple[int, str]]:
    """The rows to publish, locked: per endpoint with due rows, up to its free slots; `batch`
    at most in all."""
    lost = now - dt.timedelta(seconds=REDISPATCH_AFTER_SECONDS)
    # ...unless the webhooks queue is backed up: their tasks are then most likely waiting in it.
    redispatch = queue_depths([WEBHOOKS_QUEUE]).get(WEBHOOKS_QUEUE, 0) < batch
    due = _due(now=now, lost=lost, redispatch=redispatch)
    waiting = WebhookMessage.objects.filter(due, endpoint=OuterRef("pk"))
    endpoints = [
        str(pk)
        for pk in WebhookEndpoint.objects.filter(Exists(waiting)).values_list("pk", flat=True)
    ]
    if not endpoints:
        return []
    limits: dict[str, int] = {}
    room = batch
    for endpoint_id, free in _free_slots(endpoints).items():
        if free > 0 and room > 0:
            limits[endpoint_id] = min(free, room)
            room -= limits[endpoint_id]
    if not limits:
        return []
    params: dict[str, Any] = {
        "endpoints": [uuid.UUID(e) for e in limits],
        "free": list(limits.values()),
        "now": now,
        "lost": lost,
        "redispatch": redispatch,
        "sending": M.SENDING.value,
        "pending": M.PENDING.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(table=WebhookMessage._meta.db_table), params)
        return [(pk, state) for pk, state in cursor.fetchall()]


def messages_dispatch_due(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """The sweep: publish the due messages that are not on their way, up to each endpoint's
    free slots. The number published."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = _claim(now=now, batch=batch)
        if not rows:
            return 0
        ids = [pk for pk, _ in rows]
        stale_ids = [pk for pk, state in rows if state == M.SENDING]
        if stale_ids:  # at least once: that attempt may or may not have reached the receiver
            held = WebhookMessage.objects.filter(id__in=stale_ids, state=M.SENDING)
            # ...unless it was the last: dead (replayable), not a further attempt.
            spent = list(held.filter(attempts__gte=max_attempts()).values_list("id", flat=True))
            held.filter(id__in=spent).update(
                state=M.DEAD, last_error="attempts exhausted; the last one's worker died"
            )
            held.exclude(id__in=spent).update(state=M.PENDING, next_attempt_at=now)
            ids = [pk for pk in ids if pk not in set(spent)]
        if not ids:
            return 0
        WebhookMessage.objects.filter(id__in=ids).update(dispatched_at=now)
        transaction.on_commit(lambda: deliveries_publish(ids))
    return len(ids)
