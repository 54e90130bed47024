"""Getting due messages to the webhooks worker: the dispatch task fans a committed batch out
into one deliver task per message, and the beat sweep (every WEBHOOKS_SWEEP_EVERY_SECONDS, on
the maintenance queue: never behind slow receivers, never delaying the digests' closes) finds
in PostgreSQL what is due and not on its way: retries whose time has come, first attempts whose
publish was lost, and messages whose attempt's worker died (their lease over; dead if that was
the last attempt). Claimed FOR UPDATE SKIP LOCKED, so two sweeps never take the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.broker import queue_depths
from apps.webhooks.attempts import max_attempts
from apps.webhooks.models import MessageStatus, WebhookMessage
from apps.webhooks.publish import deliveries_publish
from notifier.queues import WEBHOOKS_QUEUE

M = MessageStatus
# A message published this long ago and still pending is published again (its task was lost)...
REDISPATCH_AFTER_SECONDS = 120.0


def messages_dispatch(*, message_ids: Sequence[int]) -> int:
    """Publish a deliver task for each message (the dispatch task). The number published."""
    deliveries_publish(list(message_ids))
    return len(message_ids)


def messages_dispatch_due(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """The sweep: publish the due messages that are not on their way. The number published."""
    now = now or timezone.now()
    lost = now - dt.timedelta(seconds=REDISPATCH_AFTER_SECONDS)
    due = Q(state=M.PENDING, next_attempt_at__lte=now) & (
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=lost)
    )
    # ...unless the webhooks queue is backed up: their tasks are then most likely waiting in it.
    backlog = queue_depths([WEBHOOKS_QUEUE]).get(WEBHOOKS_QUEUE, 0)
    if backlog >= batch:
        due = Q(state=M.PENDING, next_attempt_at__lte=now, dispatched_at__isnull=True)
    stale = Q(state=M.SENDING, next_attempt_at__lte=now)  # the attempt's worker died
    with transaction.atomic():
        rows = list(
            WebhookMessage.objects.select_for_update(skip_locked=True)
            .filter(due | stale)
            .order_by("next_attempt_at")
            .values_list("id", "state")[:batch]
        )
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
