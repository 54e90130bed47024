"""What a batch of timeline and attempt rows adds to the rollup, per rollup key: pure Python
over the rows the selectors read (the rules are docs/analytics.md's, "How the numbers are
kept")."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from apps.analytics.fold_selectors import SENT_GROUP, AttemptRow, EventRow
from apps.deliveries.models import DeliveryStatus
from notifier import histograms
from notifier.routing import Reason

S = DeliveryStatus
# Counted where the delivery was before any send: variant "" and provider "" (whatever the fold
# timing, the send may not have chosen them yet).
PRE_SEND: dict[str, str] = {S.SKIPPED: "skipped", S.DIGESTED: "digested", S.CANCELLED: "cancelled"}
# Counted under the delivery's variant and provider (set at send).
POST_SEND: dict[str, str] = {
    S.DELIVERED: "delivered",
    S.OPENED: "opened",
    S.CLICKED: "clicked",
    S.READ: "read",
    S.FAILED: "failed",
    S.DEAD: "dead",
}
# A skip whose reason is none of the routing's (notifier.routing.Reason).
OTHER_REASON = "other"


class Key(NamedTuple):
    hour: dt.datetime
    client_id: int
    template_id: int
    channel: str
    variant: str
    provider: str


@dataclass
class Increment:
    counters: Counter[str] = field(default_factory=Counter)
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    accept_to_sent_ms_sum: int = 0
    accept_to_sent_ms_hist: list[int] = field(default_factory=histograms.empty)
    sent_to_delivered_ms_sum: int = 0
    sent_to_delivered_ms_hist: list[int] = field(default_factory=histograms.empty)
    cost_micros: int = 0


@lru_cache(maxsize=256)
def hour_of(epoch_hour: int) -> dt.datetime:
    """The start of that UTC hour (whole hours since the epoch, as the fold's rows give it)."""
    return dt.datetime.fromtimestamp(epoch_hour * 3600, dt.UTC)


def skip_reason(reason: str) -> str:
    """The routing's code for a skip's stored message ("opted_out", ...), else "other"."""
    code = Reason.of(reason)
    return code.value if code is not None else OTHER_REASON


def _at(out: dict[Key, Increment], key: Key) -> Increment:
    inc = out.get(key)
    if inc is None:
        inc = out[key] = Increment()
    return inc


def _post_key(row: EventRow, hour: dt.datetime) -> Key:
    return Key(hour, row.client_id, row.template_id, row.channel, row.variant, row.provider)


def increments_of(
    events: Iterable[EventRow], attempts: Iterable[AttemptRow]
) -> dict[Key, Increment]:
    """The batch's additions, by rollup key."""
    out: dict[Key, Increment] = {}
    for row in events:
        status = row.status
        hour = hour_of(row.hour)
        pre = post = None
        if row.first_event:
            pre = _at(out, Key(hour, row.client_id, row.template_id, row.channel, "", ""))
            pre.counters["accepted"] += 1
        if status in PRE_SEND and row.first_status:
            pre = pre or _at(out, Key(hour, row.client_id, row.template_id, row.channel, "", ""))
            pre.counters[PRE_SEND[status]] += 1
            if status == S.SKIPPED:
                pre.skipped_reasons[skip_reason(row.reason)] += 1
        if status in SENT_GROUP and row.first_sent and row.accept_ms is not None:
            post = _at(out, _post_key(row, hour))
            post.counters["sent"] += 1
            ms = row.accept_ms
            post.accept_to_sent_ms_sum += ms
            post.accept_to_sent_ms_hist[histograms.bucket(ms)] += 1
        if status in POST_SEND and row.first_status:
            post = post or _at(out, _post_key(row, hour))
            post.counters[POST_SEND[status]] += 1
            # No sample when the report overtook the worker (deliver_ms is None).
            if status == S.DELIVERED and row.deliver_ms is not None:
                ms = row.deliver_ms
                post.sent_to_delivered_ms_sum += ms
                post.sent_to_delivered_ms_hist[histograms.bucket(ms)] += 1
    for attempt in attempts:
        if attempt.cost_micros:
            key = Key(
                hour_of(attempt.hour),
                attempt.client_id,
                attempt.template_id,
                attempt.channel,
                attempt.variant,
                attempt.provider,
            )
            out.setdefault(key, Increment()).cost_micros += attempt.cost_micros
    return out
