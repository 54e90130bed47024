"""The table of a delivery's status changes, and the one guarded UPDATE that makes any of them.

Every change is a named `Transition` from a set of statuses to one status. `move` writes it as a
single `UPDATE ... WHERE id = v.id AND status IN (sources) RETURNING id`: a row that another
writer moved first (a worker, a provider report, a cancel) is left alone, and the caller learns
which rows it moved. A claim also leaves a `retrying` row alone until its `next_attempt_at`
(`when_due`): a duplicate of its message must not send it before its backoff is over. Values
per row (the provider's message id) travel in a VALUES list, so a batch of any size is still one
statement (Django's bulk_update builds a CASE per field and row: it cost more CPU than the sends
themselves). PostgreSQL and SQLite >= 3.35 alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from apps.deliveries.counting import event_counts
from apps.deliveries.models import (
    ACCEPTED,
    CANCELLABLE,
    CLAIM_EARLY_SECONDS,
    CLAIMABLE,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
)
from apps.deliveries.signals import changes_announce

S = DeliveryStatus


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[DeliveryStatus]
    target: DeliveryStatus
    # Whether the delivery's timeline gets an event (a claim and its hand-back are not news).
    recorded: bool = True
    # Sources whose rows move only once their `next_attempt_at` (if any) has come.
    when_due: frozenset[DeliveryStatus] = frozenset()


def _t(
    name: str,
    sources: Iterable[DeliveryStatus],
    target: DeliveryStatus,
    *,
    when_due: Iterable[DeliveryStatus] = (),
    **kw: Any,
) -> Any:
    return Transition(name, frozenset(sources), target, when_due=frozenset(when_due), **kw)


# Provider reports only move forward along this order; `failed` (a bounce, a drop, an
# undelivered SMS) follows a `sending`, `sent` or `delivered`, never an open or a click.
FORWARD = (S.SENDING, S.SENT, S.DELIVERED, S.OPENED, S.CLICKED)
FAILABLE = (S.SENDING, S.SENT, S.DELIVERED)

# fmt: off
CLAIM     = _t("claim",     CLAIMABLE, S.SENDING, recorded=False, when_due={S.RETRYING})
HAND_BACK = _t("hand back", (S.SENDING,), S.QUEUED, recorded=False)  # claimed, not attempted
SENT      = _t("sent",      (S.SENDING,), S.SENT)
RETRY     = _t("retry",     (S.SENDING,), S.RETRYING)
DIE       = _t("die",       (S.SENDING,), S.DEAD)
SKIP      = _t("skip",      (S.SENDING,), S.SKIPPED)   # the re-check before sending
DEFER     = _t("defer",     (S.SENDING,), S.DEFERRED)  # the re-check before sending
CANCEL    = _t("cancel",    CANCELLABLE, S.CANCELLED)
RELEASE   = _t("release",   (S.SCHEDULED, S.DEFERRED), S.QUEUED)
REQUEUE   = _t("requeue",   (S.QUEUED, S.RETRYING, S.SENDING), S.QUEUED)  # the reconciler
REPLAY    = _t("replay",    (S.DEAD,), S.QUEUED)
READ      = _t("read",      ACCEPTED[:-1], S.READ)  # sent .. clicked; `read` is final
# An escalation step the recipient's engagement made needless (reason `engaged`).
STAND_DOWN = _t("stand down", CANCELLABLE, S.CANCELLED)
# A digest item whose notification is cancelled while its window is open (lifecycle/digests.py).
LEAVE     = _t("leave digest", (S.DIGESTED,), S.CANCELLED)
# A digest item whose window could not close after every try: a dead letter, as a send that
# failed permanently (replayed, it goes out on its own as a digest of one).
DIGEST_DIE = _t("digest failed", (S.DIGESTED,), S.DEAD)
# fmt: on
# What a provider report may do: each status of FORWARD from those before it, and `failed`.
REPORTS: dict[DeliveryStatus, Transition] = {
    **{
        target: _t(f"report {target}", FORWARD[:rank], target)
        for rank, target in enumerate(FORWARD)
        if rank > 0
    },
    S.FAILED: _t("report failed", FAILABLE, S.FAILED),
}
TRANSITIONS: tuple[Transition, ...] = (
    CLAIM,
    HAND_BACK,
    SENT,
    RETRY,
    DIE,
    SKIP,
    DEFER,
    CANCEL,
    RELEASE,
    REQUEUE,
    REPLAY,
    READ,
    STAND_DOWN,
    LEAVE,
    DIGEST_DIE,
    *REPORTS.values(),
)


@dataclass(frozen=True)
class Shift:
    """`column = column + by` (the attempt counter)."""

    by: int


def _prep(name: str, value: Any) -> Any:
    field = Delivery._meta.get_field(name)
    assert isinstance(field, Field)  # noqa: S101 - a concrete column of ours
    return field.get_db_prep_save(value, connection)


def move(
    transition: Transition,
    ids: Sequence[Any],
    *,
    values: Mapping[str, Any] | None = None,
    per_row: Mapping[str, Sequence[Any]] | None = None,
    now: dt.datetime | None = None,
) -> set[Any]:
    """Move the rows `ids` still in one of `transition`'s sources to its target, setting
    `values` on all (a `Shift` adds to the column) and `per_row[name][i]` on row `ids[i]`.
    One statement. Returns the ids moved (as the model's pk type)."""
    if not ids:
        return set()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    now = now or timezone.now()
    sets = ["status = %s", "updated_at = %s"]
    params: list[Any] = [transition.target.value, _prep("updated_at", now)]
    for name, value in (values or {}).items():
        if isinstance(value, Shift):
            sets.append(f"{name} = {table}.{name} + %s")
            params.append(value.by)
        else:
            sets.append(f"{name} = %s")
            params.append(_prep(name, value))
    columns = list(per_row or {})
    sets += [f"{name} = v.{name}" for name in columns]
    row_values: list[Any] = []
    for i, pk in enumerate(ids):
        row_values.append(_prep("id", pk))
        row_values.extend(_prep(name, (per_row or {})[name][i]) for name in columns)
    width = 1 + len(columns)
    rows = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(ids))
    named = ", ".join(["column1 AS id", *(f"column{i + 2} AS {n}" for i, n in enumerate(columns))])
    sources = ", ".join(["%s"] * len(transition.sources))
    # Table and column names are ours; every value is a parameter.
    due = ""
    if transition.when_due:
        waiting = ", ".join(["%s"] * len(transition.when_due))
        due = (
            f" AND ({table}.status NOT IN ({waiting}) OR {table}.next_attempt_at IS NULL"
            f" OR {table}.next_attempt_at <= %s)"
        )
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} "  # noqa: S608
        f"FROM (SELECT {named} FROM (VALUES {rows}) AS rows) AS v "
        f"WHERE {table}.id = v.id AND {table}.status IN ({sources}){due} RETURNING {table}.id"
    )
    params += row_values
    params += sorted(s.value for s in transition.sources)
    if transition.when_due:
        params += sorted(s.value for s in transition.when_due)
        params.append(_prep("next_attempt_at", now + dt.timedelta(seconds=CLAIM_EARLY_SECONDS)))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {Delivery._meta.pk.to_python(row[0]) for row in cursor.fetchall()}


def events_add(
    deliveries: Iterable[Delivery],
    status: str | None,
    detail: str | Callable[[Delivery], str],
    *,
    announce: bool = True,
    creation: bool = False,
) -> None:
    """One timeline row per delivery (in `status`, else the delivery's own), in one INSERT; the
    change announced (`deliveries_changed`, in this transaction) unless `announce` is off (a
    row that only records, not a new status). `creation`: the deliveries' first rows. A row
    that can never add to the analytics rollup is inserted counted (counting.event_counts)."""
    deliveries = list(deliveries)
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            delivery=d,
            status=(row_status := status or d.status),
            detail=(detail(d) if callable(detail) else detail)[:500],
            counted=not event_counts(row_status, creation=creation, record_only=not announce),
        )
        for d in deliveries
    )
    if announce:
        changes_announce(deliveries, status)


def apply(
    transition: Transition, deliveries: Iterable[Delivery], fields: Mapping[str, Any]
) -> None:
    """Keep the in-memory rows the caller holds in step with what `move` wrote."""
    for delivery in deliveries:
        delivery.status = transition.target
        for name, value in fields.items():
            if isinstance(value, Shift):
                delivery.attempts += value.by  # the only shifted column
            else:
                setattr(delivery, name, value)
