"""The aggregator's reads: the next uncounted timeline and attempt rows, locked for this fold
(FOR UPDATE SKIP LOCKED on PostgreSQL: a second fold running at once takes the rows after
them; SQLite's IMMEDIATE transactions run one fold at a time), with what the rollup key and the
"first" decisions need (docs/analytics.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, Count, Exists, F, OuterRef, Sum, When

from apps.analytics.models import COUNTERS, Rollup
from apps.deliveries.models import Attempt, DeliveryEvent, DeliveryStatus

S = DeliveryStatus
# Any of these is the delivery's `sent` (a provider report can overtake the worker's `sent`).
SENT_GROUP = (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.READ)


@dataclass(frozen=True)
class EventRow:
    id: int
    status: str
    at: dt.datetime
    channel: str
    variant: str
    provider: str
    created_at: dt.datetime | None  # read for the SENT_GROUP rows only (accept->sent)
    sent_at: dt.datetime | None  # read for the `delivered` rows only (sent->delivered)
    reason: str
    client_id: int
    template_id: int
    first_event: bool  # the delivery's very first event (its creation)
    first_status: bool  # no earlier event of the delivery with this status
    first_sent: bool  # no earlier event of the delivery in SENT_GROUP


@dataclass(frozen=True)
class AttemptRow:
    id: int
    provider: str
    finished_at: dt.datetime
    cost_micros: int
    channel: str
    variant: str
    client_id: int
    template_id: int


def events_to_fold(*, limit: int) -> list[EventRow]:
    """Up to `limit` uncounted timeline rows, oldest first, locked until the caller's
    transaction ends. Each "first" is a NOT EXISTS probe on the delivery's earlier events
    (lower id: a delivery's events are written under its row lock, so ids follow its order),
    on the delivery_id index; whether those were counted does not matter."""
    earlier = DeliveryEvent.objects.filter(
        delivery_id=OuterRef("delivery_id"), id__lt=OuterRef("id")
    )
    rows = (
        DeliveryEvent.objects.filter(counted=False)
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))
        .annotate(
            first_event=~Exists(earlier),
            first_status=~Exists(earlier.filter(status=OuterRef("status"))),
            first_sent=~Exists(earlier.filter(status__in=SENT_GROUP)),
            # Only the rows that measure a delay read its times (half the datetimes parsed).
            created=Case(When(status__in=SENT_GROUP, then=F("delivery__created_at"))),
            delivered_after=Case(When(status=S.DELIVERED, then=F("delivery__sent_at"))),
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
    return [EventRow(*row) for row in rows]


def attempts_to_fold(*, limit: int) -> list[AttemptRow]:
    """Up to `limit` uncounted attempt rows, oldest first, locked as `events_to_fold`'s."""
    rows = (
        Attempt.objects.filter(counted=False)
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))
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
    return [AttemptRow(*row) for row in rows]


def rollup_totals(**filters: object) -> dict[str, int]:
    """The rollup's counters and cost summed over every row (or those matching `filters`)."""
    sums = Rollup.objects.filter(**filters).aggregate(
        **{name: Sum(name) for name in (*COUNTERS, "cost_micros")}
    )
    return {name: int(value or 0) for name, value in sums.items()}


def timeline_totals(**filters: object) -> dict[str, int]:
    """The same totals counted straight from the timeline and the attempts (a scan: for checks
    and tests, never for the API): deliveries with an event in each status (`accepted`: with
    any event; `sent`: with one in SENT_GROUP), the attempts' costs. `filters` apply to the
    delivery (`channel="sms"`)."""
    events = DeliveryEvent.objects.filter(**{f"delivery__{k}": v for k, v in filters.items()})
    per_status = dict(
        events.values("status")
        .annotate(n=Count("delivery_id", distinct=True))
        .values_list("status", "n")
    )
    totals = {name: int(per_status.get(name, 0)) for name in COUNTERS}
    totals["accepted"] = events.values("delivery_id").distinct().count()
    totals["sent"] = events.filter(status__in=SENT_GROUP).values("delivery_id").distinct().count()
    cost = Attempt.objects.filter(**{f"delivery__{k}": v for k, v in filters.items()}).aggregate(
        total=Sum("cost_micros")
    )["total"]
    totals["cost_micros"] = int(cost or 0)
    return totals
