"""Account for every delivery of a chaos run: delivered (per the simulators' records or the
inbox), dead-lettered with a reason, or lost. Duplicates: one delivery id received (and
accepted) twice by a simulator.

A `digested` item is accounted through its digest: delivered only if its window (`Delivery.
digest`) closed and the digest's own delivery (a notification of its own, outside the run's ids)
was received; an item whose window never closed, or whose digest delivery was never received,
is lost, and so is a window's count of `digested` items off its `item_count` (an item that
joined after the close, or one that left after it). The digest deliveries are accounted as any
other (duplicates counted), and a digest delivery its window does not name (the window closed
twice) is a duplicate. A topic
notification's deliveries are checked against the topic's subscribers minus `exclude`: one per
subscriber and channel, none missing, none to anybody else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.receipts import (
    ACCEPTED,
    Receipts,
    Row,
    Window,
    delivery_rows,
    digest_deliveries,
    digest_windows,
)

# A delivery in one of these is settled. Not `digested`: that item is settled once its digest's
# delivery is (`unfinished`).
FINAL = {
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "dead",
    "failed",
    "skipped",
    "cancelled",
}
DIGESTED = "digested"
EXAMPLES = 10


@dataclass
class FanOutCheck:
    """One topic notification: the API's expected count, the fan-out's own counters, and the
    deliveries in the database against the subscribers (minus `exclude`) times the channels."""

    notification_id: str
    topic: str
    expected: int
    created: int
    finished: bool
    in_db: int
    missing: int
    unexpected: int


@dataclass
class Account:
    notifications: int = 0
    deliveries: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    duplicated: int = 0
    dead: int = 0
    skipped: int = 0
    # Items delivered through their digest's delivery; `digested_other` those whose digest
    # delivery was dead-lettered or skipped (accounted, as such a delivery of their own is).
    digested: int = 0
    digested_other: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    # Deliveries that should not exist (a topic delivery to an excluded or unsubscribed
    # recipient): not lost, but wrong.
    unexpected: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    lost_examples: list[str] = field(default_factory=list)
    by_channel: dict[str, Counter[str]] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    db_status: Counter[str] = field(default_factory=Counter)
    # The digest windows the run's items joined: {"sent", "empty", "open"}; and their own
    # deliveries: {"delivered", "duplicated", "dead", "skipped", "lost"}.
    digests: Counter[str] = field(default_factory=Counter)
    digest_deliveries: Counter[str] = field(default_factory=Counter)
    fan_outs: list[FanOutCheck] = field(default_factory=list)

    def channel(self, name: str) -> Counter[str]:
        return self.by_channel.setdefault(name, Counter())

    def lose(self, n: int, example: str) -> None:
        self.lost += n
        if n and len(self.lost_examples) < EXAMPLES:
            self.lost_examples.append(example)


# --- the account --------------------------------------------------------------------------


def account(
    expected: Mapping[str, int],
    sim_records: Mapping[str, list[dict[str, Any]]],
    fan_outs: Collection[str] = (),
) -> Account:
    """`expected`: notification id -> deliveries the API accepted for it; `fan_outs`: those of
    them sent to a topic; `sim_records`: channel -> the simulator's request log (each with `key`
    and `status`)."""
    rows = delivery_rows(notification_ids=expected)
    windows = digest_windows(r.digest_id for r in rows if r.digest_id)
    digest_rows = delivery_rows(ids=[w.delivery_id for w in windows.values() if w.delivery_id])
    receipts = Receipts.read(rows + digest_rows, sim_records)
    result = Account(
        notifications=len(expected),
        deliveries=len(rows),
        expected_deliveries=sum(expected.values()),
    )
    for channel in {r.channel for r in rows + digest_rows}:
        result.evidence[channel] = receipts.evidence(channel)
    digest_outcomes = _account_digests(result, windows, digest_rows, receipts)
    # Items beyond what their window closed with (they joined after its close): lost.
    excess = {w.id: w.digested - w.item_count for w in windows.values() if w.closed}
    for row in rows:
        result.db_status[row.status] += 1
        if row.status == DIGESTED:
            _account_item(result, row, windows, digest_outcomes, excess)
            # An item also sent on its own went out twice (once in its digest).
            alone = receipts.received(row)
            if alone:
                result.duplicated += alone
                result.channel(row.channel)["digested and sent alone"] += alone
            continue
        kind, received = receipts.outcome(row)
        counts = result.channel(row.channel)
        counts[kind] += 1
        if kind == "delivered":
            result.delivered += 1
            if received > 1:
                result.duplicated += received - 1
                counts["duplicated"] += received - 1
            if row.status not in ACCEPTED:
                counts[f"delivered but {row.status} in db"] += 1
        elif kind == "dead":
            result.dead += 1
            result.dead_reasons[receipts.dead[row.id]] += 1
        elif kind == "skipped":
            result.skipped += 1
        else:
            result.lose(1, f"{row.id} ({row.channel}, {row.status} in db)")
    _account_missing(result, expected, rows, fan_outs)
    return result


def _account_digests(
    result: Account, windows: Mapping[str, Window], digest_rows: list[Row], receipts: Receipts
) -> dict[str, str]:
    """Count the windows and account each digest's own delivery. Returns delivery id -> its
    outcome ("delivered", "dead", "skipped", "lost")."""
    for window in windows.values():
        result.digests[(window.outcome or "sent") if window.closed else "open"] += 1
        # A failed window's items are dead (accounted as such), not `digested`.
        if window.closed and window.outcome != "failed" and window.digested < window.item_count:
            short = window.item_count - window.digested
            result.lose(
                short,
                f"digest {window.id} closed with {window.item_count} items, "
                f"{window.digested} digested now",
            )
    made = digest_deliveries(windows.keys())
    for window_id, delivery_ids in made.items():
        # A digest delivery its window does not name: the window closed (and sent) again.
        again = len(delivery_ids - {windows[window_id].delivery_id})
        result.duplicated += again
        result.digest_deliveries["unreferenced"] += again
    outcomes: dict[str, str] = {}
    for row in digest_rows:
        kind, received = receipts.outcome(row)
        outcomes[row.id] = kind
        result.digest_deliveries[kind] += 1
        result.channel(row.channel)[f"digest {kind}"] += 1
        if received > 1:
            result.duplicated += received - 1
            result.digest_deliveries["duplicated"] += received - 1
            result.channel(row.channel)["digest duplicated"] += received - 1
        if kind == "dead":
            result.dead_reasons[f"digest: {receipts.dead[row.id]}"] += 1
    return outcomes


def _account_item(
    result: Account,
    row: Row,
    windows: Mapping[str, Window],
    digest_outcomes: Mapping[str, str],
    excess: dict[str, int],
) -> None:
    """A `digested` item: accounted through its window and the window's delivery. `excess`:
    per closed window, its digested items beyond its `item_count` (each taken by one item)."""
    counts = result.channel(row.channel)
    window = windows.get(row.digest_id or "")
    if window is None:
        problem = "digested without a digest"
    elif not window.closed:
        problem = f"its digest {window.id} never closed"
    elif excess.get(window.id, 0) > 0:
        excess[window.id] -= 1
        problem = f"its digest {window.id} closed with {window.item_count} items, not with it"
    elif window.delivery_id is None:
        problem = f"its digest {window.id} closed {window.outcome or '?'} with no delivery"
    else:
        kind = digest_outcomes.get(window.delivery_id, "lost")
        if kind == "delivered":
            result.digested += 1
            counts["digested"] += 1
            return
        if kind in {"dead", "skipped"}:
            result.digested_other[kind] += 1
            counts[f"digested, digest {kind}"] += 1
            return
        problem = f"its digest {window.id}'s delivery {window.delivery_id} was never received"
    counts["lost"] += 1
    result.lose(1, f"{row.id} ({row.channel}, digested: {problem})")


def _account_missing(
    result: Account, expected: Mapping[str, int], rows: list[Row], fan_outs: Collection[str]
) -> None:
    """Rows that should exist but do not are lost: per notification, fewer rows than accepted;
    per topic notification, a subscriber and channel with no delivery."""
    # Fallbacks come on top of the accepted count: one must not stand in for a missing primary.
    per_notification = Counter(r.notification_id for r in rows if not r.is_fallback)
    for notification_id, count in expected.items():
        if notification_id in fan_outs:
            continue
        short = max(0, count - per_notification[notification_id])
        result.lose(short, f"{short} deliveries of {notification_id} accepted but not in the db")
    for notification_id in fan_outs:
        check, missing, unexpected = fan_out_check(
            notification_id,
            expected.get(notification_id, 0),
            [r for r in rows if r.notification_id == notification_id],
        )
        result.fan_outs.append(check)
        for recipient, channel in missing[:EXAMPLES]:
            result.lose(1, f"fan-out {notification_id}: no {channel} delivery to {recipient}")
        result.lose(
            check.missing - min(len(missing), EXAMPLES),
            f"fan-out {notification_id}: {check.missing} deliveries missing of {check.expected}",
        )
        result.unexpected += len(unexpected)
        if unexpected and len(result.lost_examples) < EXAMPLES:
            result.lost_examples.append(
                f"fan-out {notification_id}: unexpected deliveries {unexpected[:3]}"
            )


def fan_out_check(
    notification_id: str, accepted: int, rows: list[Row]
) -> tuple[FanOutCheck, list[tuple[str, str]], list[tuple[str, str]]]:
    """The topic notification's deliveries (not fallback) against its topic's subscribers minus
    `exclude`, times its channels. Returns the check, and the (recipient external id, channel)
    pairs missing and unexpected."""
    from apps.deliveries.models import FanOut
    from apps.recipients.models import Recipient
    from apps.topics.models import Subscription

    fan = FanOut.objects.select_related("notification").get(notification_id=notification_id)
    subscribers = (
        set(
            Subscription.objects.filter(topic_id=fan.topic_id, recipient__erased_at__isnull=True)
            .exclude(recipient__external_id__in=fan.exclude)
            .values_list("recipient_id", flat=True)
        )
        if fan.topic_id is not None
        else set()  # the topic was deleted
    )
    want = {(r, c) for r in subscribers for c in fan.notification.channels}
    got = {(r.recipient_id, r.channel) for r in rows if not r.is_fallback}
    names = dict(
        Recipient.objects.filter(pk__in={r for r, _ in want ^ got}).values_list("pk", "external_id")
    )
    missing = sorted((names.get(r, str(r)), c) for r, c in want - got)
    unexpected = sorted((names.get(r, str(r)), c) for r, c in got - want)
    check = FanOutCheck(
        notification_id=notification_id,
        topic=fan.topic_key,
        expected=accepted,
        created=fan.created,
        finished=fan.finished_at is not None,
        in_db=len(got),
        # Fewer subscribers now than the API counted: the difference is missing too.
        missing=len(missing) + max(0, accepted - len(want)),
        unexpected=len(unexpected),
    )
    return check, missing, unexpected
