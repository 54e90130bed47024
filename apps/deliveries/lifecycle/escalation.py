"""Escalation steps after creation (reads only; moves.py makes the moves).

A step is a delivery with `escalation_step` set, `scheduled` from the start. When due, it is
released unless an earlier delivery of the same notification for the same recipient (one not a
step, or an earlier step) reached the step's `unless` state (notifier.workflows.REACHED); then
it is stood down instead: `cancelled`, reason `engaged`. A read, an open or a click (and a
`delivered` report, for steps waiting on it) stands the pending steps down at once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Q

from apps.deliveries.models import CANCELLABLE, Delivery, Notification
from notifier.workflows import REACHED, unless_met

Pair = tuple[Any, Any]  # (notification id, recipient id)
# The states that meet some `unless`: any other report (`sent`) looks for no steps at all.
MEETS_SOME = frozenset(state for states in REACHED.values() for state in states)


# The pending steps of many (notification, recipient) pairs in one statement of constant shape
# (a read-all names every unread delivery: an OR per pair made a statement of that size).
_PENDING_STEPS_SQL = """
    SELECT d.* FROM deliveries_delivery d
    JOIN unnest(%s::uuid[], %s::bigint[]) AS p(n, r)
      ON d.notification_id = p.n AND d.recipient_id = p.r
    WHERE d.escalation_step IS NOT NULL AND d.status = ANY(%s::text[])
    ORDER BY d.id
    FOR UPDATE OF d
"""
# SQLite (`make run`): how many pairs one OR'd query reads (its expression depth is limited).
_SQLITE_CHUNK = 100


def _of(pairs: Iterable[Pair]) -> Q:
    match = Q(pk__in=[])
    for notification_id, recipient_id in pairs:
        match |= Q(notification_id=notification_id, recipient_id=recipient_id)
    return match


def _unless_by_step(notification_ids: Collection[Any]) -> dict[Any, list[str]]:
    """The `unless` of each step of those of these notifications that have steps."""
    found = (
        Notification.objects.filter(id__in=notification_ids)
        .exclude(escalation=[])
        .values_list("id", "escalation")
    )
    return {pk: [str(s.get("unless", "read")) for s in steps or []] for pk, steps in found}


def _unless(unless: dict[Any, list[str]], delivery: Delivery) -> str:
    steps = unless.get(delivery.notification_id, [])
    number = delivery.escalation_step or 0
    return steps[number - 1] if 0 < number <= len(steps) else "read"


def steps_engaged(deliveries: Sequence[Delivery]) -> set[Any]:
    """Of these due deliveries, the ids of the escalation steps whose `unless` is met."""
    steps = [d for d in deliveries if d.escalation_step]
    if not steps:
        return set()
    pairs = {(d.notification_id, d.recipient_id) for d in steps}
    siblings = Delivery.objects.filter(_of(pairs)).values_list(
        "notification_id", "recipient_id", "escalation_step", "status"
    )
    statuses: dict[Pair, list[tuple[int, str]]] = {}
    for notification_id, recipient_id, number, status in siblings:
        statuses.setdefault((notification_id, recipient_id), []).append((number or 0, status))
    unless = _unless_by_step({n for n, _ in pairs})
    engaged: set[Any] = set()
    for step in steps:
        earlier = [
            status
            for number, status in statuses.get((step.notification_id, step.recipient_id), [])
            if number < (step.escalation_step or 0)
        ]
        if unless_met(_unless(unless, step), earlier):
            engaged.add(step.id)
    return engaged


def steps_pending(pairs: Collection[Pair], *, reached: str) -> list[Delivery]:
    """The pending steps of these (notification, recipient) pairs that a delivery reaching
    `reached` satisfies, locked in id order."""
    if not pairs or reached not in MEETS_SOME:
        return []
    # Only notifications with a step that `reached` satisfies have anything to stand down (most
    # have no steps at all): the other pairs are not read, nor locked.
    unless = _unless_by_step({n for n, _ in pairs})
    wanted = {n for n, steps in unless.items() if any(unless_met(u, [reached]) for u in steps)}
    kept = sorted((n, r) for n, r in set(pairs) if n in wanted)
    if not kept:
        return []
    return [d for d in _pending_steps(kept) if unless_met(_unless(unless, d), [reached])]


def _pending_steps(pairs: Sequence[Pair]) -> list[Delivery]:
    """The cancellable steps of these pairs, locked (FOR UPDATE) in id order."""
    if connection.vendor == "postgresql":
        notification_ids, recipient_ids = (list(column) for column in zip(*pairs, strict=True))
        statuses = [str(s) for s in CANCELLABLE]
        return list(
            Delivery.objects.raw(_PENDING_STEPS_SQL, [notification_ids, recipient_ids, statuses])
        )
    found: list[Delivery] = []  # SQLite has no row locks: a write takes the whole database
    for start in range(0, len(pairs), _SQLITE_CHUNK):
        found += Delivery.objects.filter(
            _of(pairs[start : start + _SQLITE_CHUNK]),
            escalation_step__isnull=False,
            status__in=CANCELLABLE,
        )
    return sorted(found, key=lambda d: str(d.pk))
