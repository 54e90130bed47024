"""Publishing send tasks. Called from services inside `transaction.on_commit` only."""

from __future__ import annotations

from collections.abc import Iterable

from config.celery import app
from config.queues import queue_name

SEND_TASK = "deliveries.send"
# Messages buffered before a flush to the broker.
PUBLISH_BATCH = 500


def publish_sends(items: Iterable[tuple[str, str, str]], *, countdown: float | None = None) -> None:
    """Publish one send task per (delivery id, channel, priority), over one broker connection."""
    items = list(items)
    if not items:
        return
    # One producer, and kombu's transport-level batching (pipelined LPUSHes on Redis).
    with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
        for delivery_id, channel, priority in items:
            app.send_task(
                SEND_TASK,
                args=[delivery_id],
                queue=queue_name(channel, priority),
                countdown=countdown,
                producer=producer,
            )
