"""The analytics aggregator's queue (apps/analytics): the timeline and attempt rows not yet
folded into the rollup (`counted` false, a partial index each). `events_take` and
`attempts_take` take the next ones for the caller's transaction, mark them counted and return
what the fold needs; the caller adds them to the rollup in the same transaction, so a row is
counted exactly once (a rolled-back fold leaves them uncounted).

On PostgreSQL one statement each: the rows picked `FOR UPDATE SKIP LOCKED` (a second fold at
once takes the next ones), marked by `UPDATE ... RETURNING`, joined and probed in the same
statement (a separate lock, read and update cost about twice as much). SQLite (`make run`,
IMMEDIATE transactions: one writer at a time) reads, then marks."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Case, Exists, F, OuterRef, When

from apps.deliveries.models import ACCEPTED, Attempt, DeliveryEvent, DeliveryStatus

# The statuses a timeline row can count in (apps/analytics/increments.py: the pre-send
# counters, the `sent` group, the later ones); a row in any other status counts only as its
# delivery's creation (`accepted`).
COUNTING_STATUSES = frozenset(
    {
        *ACCEPTED,
        DeliveryStatus.FAILED,
        DeliveryStatus.DEAD,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.CANCELLED,
        DeliveryStatus.DIGESTED,
    }
)


def event_counts(status: str, *, creation: bool, record_only: bool) -> bool:
    """Whether a new timeline row can ever add to the rollup, so it must wait in the queue
    (`counted` false): a delivery's creation always (it is `accepted`, whatever its status),
    otherwise a row in COUNTING_STATUSES that is not written only to record (the "attempt N
    finished after X reported Y" row, the digest item's "sent in digest": never a first). The
    others (retrying, deferred, queued again, ...) are inserted counted: the fold never reads
    them, and the "first" probes look at every earlier row, counted or not."""
    return creation or (not record_only and status in COUNTING_STATUSES)


# (id, status, at, channel, variant, provider, created_at if in ACCEPTED, sent_at if delivered,
#  reason, client id, template id, first event?, first of its status?, first in ACCEPTED?)
EventTuple = tuple[Any, ...]
# (id, provider, finished_at, cost_micros, channel, variant, client id, template id)
AttemptTuple = tuple[Any, ...]

_SENT = ", ".join(f"'{s.value}'" for s in ACCEPTED)  # our own constants, not input
_EARLIER = (
    "SELECT 1 FROM deliveries_deliveryevent e WHERE e.delivery_id = t.delivery_id AND e.id < t.id"
)
EVENTS_SQL = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries_deliveryevent WHERE NOT counted
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE deliveries_deliveryevent SET counted = true FROM picked
    WHERE deliveries_deliveryevent.id = picked.id
    RETURNING deliveries_deliveryevent.id, deliveries_deliveryevent.delivery_id,
        deliveries_deliveryevent.status, deliveries_deliveryevent.at
)
SELECT t.id, t.status, t.at, d.channel, d.variant, d.provider,
    CASE WHEN t.status IN ({_SENT}) THEN d.created_at END,
    CASE WHEN t.status = %s THEN d.sent_at END,
    d.reason, n.client_id, n.template_id,
    NOT EXISTS ({_EARLIER}),
    NOT EXISTS ({_EARLIER} AND e.status = t.status),
    NOT EXISTS ({_EARLIER} AND e.status IN ({_SENT}))
FROM taken t
JOIN deliveries_delivery d ON d.id = t.delivery_id
JOIN deliveries_notification n ON n.id = d.notification_id
ORDER BY t.id
"""  # noqa: S608 - table names and statuses are ours; the limit is a parameter
ATTEMPTS_SQL = """
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries_attempt WHERE NOT counted
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE deliveries_attempt SET counted = true FROM picked
    WHERE deliveries_attempt.id = picked.id
    RETURNING deliveries_attempt.id, deliveries_attempt.delivery_id, deliveries_attempt.provider,
        deliveries_attempt.finished_at, deliveries_attempt.cost_micros
)
SELECT t.id, t.provider, t.finished_at, t.cost_micros, d.channel, d.variant, n.client_id,
    n.template_id
FROM taken t
JOIN deliveries_delivery d ON d.id = t.delivery_id
JOIN deliveries_notification n ON n.id = d.notification_id
ORDER BY t.id
"""


def events_take(*, limit: int) -> list[EventTuple]:
    """Up to `limit` uncounted timeline rows, oldest first, now marked counted (in the
    caller's transaction). Each "first" is a NOT EXISTS probe on the delivery's earlier rows
    (a lower id: a delivery's events are written under its row lock, so ids follow its
    order), on the delivery_id index; whether those were counted does not matter."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(EVENTS_SQL, [limit, DeliveryStatus.DELIVERED.value])
            return list(cursor.fetchall())
    earlier = DeliveryEvent.objects.filter(
        delivery_id=OuterRef("delivery_id"), id__lt=OuterRef("id")
    )
    rows = list(
        DeliveryEvent.objects.filter(counted=False)
        .order_by("id")
        .annotate(
            created=Case(When(status__in=ACCEPTED, then=F("delivery__created_at"))),
            delivered_after=Case(
                When(status=DeliveryStatus.DELIVERED, then=F("delivery__sent_at"))
            ),
            first_event=~Exists(earlier),
            first_status=~Exists(earlier.filter(status=OuterRef("status"))),
            first_sent=~Exists(earlier.filter(status__in=ACCEPTED)),
        )
        .values_list(
            "id",
            "status",
            "at",
            "delivery__channel",
            "delivery__variant",
            "delivery__provider",
            "created",
            "delivered_after",
            "delivery__reason",
            "delivery__notification__client_id",
            "delivery__notification__template_id",
            "first_event",
            "first_status",
            "first_sent",
        )[:limit]
    )
    DeliveryEvent.objects.filter(id__in=[row[0] for row in rows]).update(counted=True)
    return rows


def attempts_take(*, limit: int) -> list[AttemptTuple]:
    """Up to `limit` uncounted attempt rows, oldest first, now marked counted, as
    `events_take`'s."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(ATTEMPTS_SQL, [limit])
            return list(cursor.fetchall())
    rows = list(
        Attempt.objects.filter(counted=False)
        .order_by("id")
        .values_list(
            "id",
            "provider",
            "finished_at",
            "cost_micros",
            "delivery__channel",
            "delivery__variant",
            "delivery__notification__client_id",
            "delivery__notification__template_id",
        )[:limit]
    )
    Attempt.objects.filter(id__in=[row[0] for row in rows]).update(counted=True)
    return rows
