"""A digest's status changes: an item leaves its open window (its notification was cancelled),
a closed window becomes one delivery, a recipient's open windows close empty (erasure), and a
window that could not close after every try closes `failed`, its items dead letters.

Locks, so that an item is never both cancelled and sent, nor joins a window already closed:
closing (sent or empty) takes the digest row FOR UPDATE; a join holds it FOR KEY SHARE until
its request commits (apps/deliveries/digest_windows.py), and a cancel FOR NO KEY UPDATE. The
closing side reads the items only after its lock, so it sees every join and every cancel
committed before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from apps.core import metrics
from apps.deliveries.lifecycle.create import deliveries_create, delivery_new
from apps.deliveries.lifecycle.table import DIGEST_DIE, LEAVE, apply, events_add, move
from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus, Digest, Notification
from apps.recipients.selectors import recipient_is_suppressed


def digest_items_leave(deliveries: Sequence[Delivery], *, reason: str) -> list[Delivery]:
    """Cancel these `digested` deliveries whose window is still open (a closed window has sent
    them already). Returns those cancelled."""
    digest_ids = {d.digest_id for d in deliveries if d.digest_id is not None}
    open_ids = set(
        Digest.objects.select_for_update(no_key=True)
        .filter(id__in=digest_ids, closed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    leaving = [d for d in deliveries if d.digest_id in open_ids]
    moved = move(LEAVE, [d.id for d in leaving], values={"reason": reason[:200]})
    done = [d for d in leaving if d.id in moved]
    apply(LEAVE, done, {"reason": reason[:200]})
    events_add(done, LEAVE.target, lambda d: f"{reason}; left digest {d.digest_id}")
    return done


def digest_windows_close_empty(
    *, recipient_id: int, reason: str, now: dt.datetime
) -> list[Delivery]:
    """Close the recipient's open windows without sending anything: their items leave (cancelled
    with `reason`) and each closes `empty`. Each window is locked FOR UPDATE, in id order, before
    its items are read, as a close locks it: a request that joined it commits first, and its item
    is cancelled here rather than left `digested` in a closed window. Returns the items that
    left."""
    windows = list(
        Digest.objects.select_for_update()
        .filter(recipient_id=recipient_id, closed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not windows:
        return []
    items = list(
        Delivery.objects.select_for_update(no_key=True)
        .filter(digest_id__in=windows, status=DeliveryStatus.DIGESTED)
        .order_by("id")
    )
    left = digest_items_leave(items, reason=reason) if items else []
    Digest.objects.filter(id__in=windows).update(
        closed_at=now, outcome=Digest.Outcome.EMPTY, item_count=0
    )
    return left


def digest_window_fail(digest: Digest, *, error: str, now: dt.datetime) -> list[Delivery]:
    """Close the (locked) window `failed`: it could not close after every try. Its items
    become `dead`, each with a dead letter, as a send that failed permanently: nothing is
    left `digested` in a closed window, and a replay sends each on its own. Returns them."""
    items = list(
        Delivery.objects.select_for_update(no_key=True, of=("self",))
        .select_related("recipient")  # one recipient: the dead-letter log line's address
        .filter(digest=digest, status=DeliveryStatus.DIGESTED)
        .order_by("id")
    )
    reason = "digest failed to close"
    values = {"reason": reason, "next_attempt_at": None}
    moved = move(DIGEST_DIE, [d.id for d in items], values=values, now=now)
    dead = [d for d in items if d.id in moved]
    apply(DIGEST_DIE, dead, values)
    detail = f"digest {digest.pk} failed to close after {digest.close_attempts} tries: {error}"
    events_add(dead, DIGEST_DIE.target, detail)
    DeadLetter.objects.bulk_create(
        DeadLetter(
            delivery=d,
            channel=d.channel,
            reason=reason,
            last_error=detail[:2000],
            attempts=d.attempts,
        )
        for d in dead
    )
    for delivery in dead:
        metrics.delivery_dead(delivery=delivery, reason=reason, permanent=True)
    digest.closed_at, digest.outcome, digest.item_count = now, Digest.Outcome.FAILED, len(dead)
    digest.save(update_fields=["closed_at", "outcome", "item_count", "close_attempts"])
    return dead


def digest_deliver(
    digest: Digest,
    *,
    latest: Notification,
    variables: dict[str, Any],
    item_ids: Sequence[Any],
    now: dt.datetime,
) -> Delivery:
    """The (locked, closing) digest's own notification and delivery: rendered later from
    `variables` (the latest item's, with `items` and `count`), through the routing rules as any
    new delivery (so quiet hours and caps defer it). The items' timelines say where they went."""
    notification = Notification(
        client_id=digest.client_id,
        template_id=digest.template_id,
        template_version_id=latest.template_version_id,
        variables=variables,
        channels=[digest.channel],
        priority=latest.priority,
        category=latest.category,
        recipient_count=1,
    )
    notification.response = {"id": str(notification.id), "status": "accepted"}
    notification.save(force_insert=True)
    recipient = digest.recipient
    delivery = delivery_new(
        notification,
        recipient,
        digest.channel,
        send_at=None,
        now=now,
        suppressed=recipient_is_suppressed(recipient=recipient, channel=digest.channel),
    )
    deliveries_create([delivery], detail_prefix=f"digest {digest.pk} of {len(item_ids)}: ")
    items = Delivery.objects.filter(id__in=item_ids).only("id", "status")
    events_add(items, None, f"sent in digest {digest.pk} as delivery {delivery.pk}", announce=False)
    return delivery
