"""The rows a fold works on (taken from the aggregator's queue by apps/deliveries/counting.py),
and the totals that check the rollup against the timeline (docs/analytics.md)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Sum

from apps.analytics.models import COUNTERS, Rollup
from apps.deliveries.models import ACCEPTED, Attempt, DeliveryEvent

# Any of these is the delivery's `sent` (a provider report can overtake the worker's `sent`).
SENT_GROUP = ACCEPTED


@dataclass(frozen=True)
class EventRow:
    id: int
    status: str
    hour: int  # the row's UTC hour, in whole hours since the epoch
    channel: str
    variant: str
    provider: str
    accept_ms: int | None  # accept->sent, for the SENT_GROUP rows only
    # sent->delivered, for the `delivered` rows only, and not when the report overtook the
    # worker (its sent_at, written after the report, is later: the delay is unknown, not 0)
    deliver_ms: int | None
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
    hour: int  # finished_at's UTC hour, in whole hours since the epoch
    cost_micros: int
    channel: str
    variant: str
    client_id: int
    template_id: int


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
