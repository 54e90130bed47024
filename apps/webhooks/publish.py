"""Publishing webhook tasks after commit: a failure (the broker down) is logged, never raised
to whoever committed; the rows are in PostgreSQL and the beat sweep dispatches them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app as app
from django.db import transaction

logger = logging.getLogger(__name__)

DISPATCH_TASK = "webhooks.dispatch"
DELIVER_TASK = "webhooks.deliver"
# Message ids per dispatch task (the dispatch task fans them out on the webhooks worker, so
# the committing process, a channel worker, publishes one message per batch, not one per row).
DISPATCH_CHUNK = 500


def messages_publish(ids: Sequence[int]) -> None:
    """One dispatch task per chunk of message ids (on the webhooks queue, by its route)."""
    try:
        for start in range(0, len(ids), DISPATCH_CHUNK):
            app.send_task(
                DISPATCH_TASK, args=[list(ids[start : start + DISPATCH_CHUNK])], retry=False
            )
    except Exception as exc:  # the rows are committed: the sweep dispatches them
        logger.warning(
            "webhook dispatch not published; left to the sweep: %s: %s",
            type(exc).__name__,
            exc,
            extra={"messages": len(ids)},
        )


def messages_publish_on_commit(ids: Sequence[int]) -> None:
    ids = list(ids)
    if ids:
        transaction.on_commit(lambda: messages_publish(ids))


def deliveries_publish(ids: Sequence[int], *, countdown: float | None = None) -> None:
    """One deliver task per message (the webhooks worker's threads run them side by side)."""
    try:
        with app.producer_or_acquire() as producer:
            for pk in ids:
                app.send_task(
                    DELIVER_TASK, args=[pk], countdown=countdown, producer=producer, retry=False
                )
    except Exception as exc:
        logger.warning(
            "webhook deliveries not published; left to the sweep: %s: %s",
            type(exc).__name__,
            exc,
            extra={"messages": len(ids)},
        )
