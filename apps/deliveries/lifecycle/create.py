"""A delivery's first status: what the routing rules say at creation, written with its event."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, connections, models, transaction
from django.db.models.sql import InsertQuery
from psycopg.types.json import Jsonb

from apps.core.bound import bound_cursor
from apps.deliveries.lifecycle.insert_values import (
    ExpressionValue,
    Preparer,
    preparers,
    values_prepared,
)
from apps.deliveries.lifecycle.table import events_add
from apps.deliveries.models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Digest,
    Notification,
    default_max_attempts,
)
from apps.deliveries.queueing import publish_sends_after_commit, request_path
from apps.deliveries.rules import delivery_decide
from apps.deliveries.signals import changes_announce, changes_announced
from apps.recipients.models import Recipient
from notifier.routing import Action

# The first event of a fallback delivery says why it exists.
FALLBACK_DETAIL = "fallback: every requested channel failed; "


def enqueue_on_commit(deliveries: Iterable[Delivery]) -> None:
    """Publish send tasks for these (already `queued`) deliveries once the transaction commits
    (fail-fast if registered on a request's path: `request_publishes`)."""
    items = [(str(d.id), d.channel, d.priority) for d in deliveries]
    if items:
        fail_fast = request_path()
        transaction.on_commit(lambda: publish_sends_after_commit(items, fail_fast=fail_fast))


def delivery_new(
    notification: Notification,
    recipient: Recipient,
    channel: str,
    *,
    send_at: dt.datetime | None,
    now: dt.datetime,
    suppressed: bool,
    is_fallback: bool = False,
    throttled: bool = False,
    escalation_step: int | None = None,
) -> Delivery:
    """An unsaved delivery in the status the routing rules give it: `skipped` (with the reason),
    `scheduled` until `send_at`, `deferred` (quiet hours, the daily cap), or `queued`.
    An escalation step is `scheduled` until its `send_at` (its delay after the notification)."""
    decision = delivery_decide(
        recipient=recipient,
        channel=channel,
        category=notification.category,
        priority=notification.priority,
        now=send_at if send_at and send_at > now else now,
        suppressed=suppressed,
        throttled=throttled,
    )
    status, reason, not_before = DeliveryStatus.QUEUED, "", None
    if decision.action is Action.SKIP:
        status, reason = DeliveryStatus.SKIPPED, decision.reason
    elif send_at and send_at > now:
        status, not_before = DeliveryStatus.SCHEDULED, send_at
    elif decision.action is Action.DEFER:
        status, reason, not_before = DeliveryStatus.DEFERRED, decision.reason, decision.not_before
    return Delivery(
        notification=notification,
        recipient=recipient,
        channel=channel,
        priority=notification.priority,
        status=status,
        reason=reason,
        not_before=not_before,
        is_fallback=is_fallback,
        escalation_step=escalation_step,
        max_attempts=default_max_attempts(channel),
    )


def delivery_best_time(delivery: Delivery, *, at: dt.datetime | None, now: dt.datetime) -> None:
    """An unsaved delivery from `delivery_new` under `"send_at": "best_time"`: `scheduled` until
    `at` (its recipient's best time), as a `send_at` makes it, unless it was skipped at creation
    (a skip stands; quiet hours and the daily cap apply again when it is sent). `at` None or not
    later than `now`: as it is, sent at once."""
    if (
        at is not None
        and at > now
        and delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
    ):
        delivery.status, delivery.reason, delivery.not_before = DeliveryStatus.SCHEDULED, "", at


# The reason a digest item shows (its timeline says which digest and when it closes).
DIGESTED_REASON = "joined a digest"
# What a new delivery may become instead: sendable now, or waiting on quiet hours or a cap
# (those apply to the digest's own delivery, not to each item).
DIGESTIBLE = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


def delivery_digested(delivery: Delivery, digest: Digest) -> None:
    """An unsaved delivery from `delivery_new` joins `digest` instead: status `digested`."""
    delivery.status = DeliveryStatus.DIGESTED
    delivery.digest = digest
    delivery.reason = DIGESTED_REASON
    delivery.not_before = None


def deliveries_create(deliveries: Sequence[Delivery], *, detail_prefix: str = "") -> None:
    """Insert new deliveries (from `delivery_new`) with their first event, in two statements,
    and publish the queued ones after commit."""
    Delivery.objects.bulk_create(deliveries)
    events_add(deliveries, None, lambda d: f"{detail_prefix}{_first_detail(d)}", creation=True)
    enqueue_on_commit(d for d in deliveries if d.status == DeliveryStatus.QUEUED)


def _first_detail(delivery: Delivery) -> str:
    if delivery.status == DeliveryStatus.DIGESTED and delivery.digest is not None:
        closes = delivery.digest.closes_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"joined digest {delivery.digest.pk} (closes {closes})"
    prefix = FALLBACK_DETAIL if delivery.is_fallback else ""
    if delivery.escalation_step:  # which step, from the notification's (unsaved) escalation
        step = delivery.notification.escalation[delivery.escalation_step - 1]
        prefix = (
            f"escalation step {delivery.escalation_step}: after {step['after']} "
            f"unless {step['unless']}; "
        )
    return f"{prefix}{delivery.reason or 'accepted'}"


def _noted(delivery: Delivery, note: str | None) -> str:
    detail = _first_detail(delivery)
    if note is None:
        return detail
    return note if detail == "accepted" else f"{note}; {detail}"


def notification_insert(
    *,
    notification: Notification,
    deliveries: Sequence[Delivery],
    notes: Mapping[uuid.UUID, str] | None = None,
) -> None:
    """Insert a new notification with its deliveries (from `delivery_new`, fallback ones
    included) and each delivery's first event, and publish the queued ones after commit.
    `notes`: by delivery id, what its first event's detail says first (the best time chosen).

    On PostgreSQL one statement: three INSERTs chained as data-modifying CTEs (the ids are
    UUIDs made here, so no INSERT waits for another's RETURNING; the foreign keys are checked
    at commit, or at its end outside a transaction). Elsewhere (SQLite under `make run`) the
    three INSERTs one after another. Called outside a transaction (`services._one_write`), it
    opens one only for what needs one: the three INSERTs elsewhere, or the statement with what
    its skipped deliveries announce (`deliveries_changed`: an outbound webhook's rows)."""
    _insert(notification, deliveries, notes or {})


def deliveries_insert(*, deliveries: Sequence[Delivery]) -> None:
    """`notification_insert` for deliveries of a notification already saved (a topic fan-out's
    chunk, a digest): the deliveries and their first events in one statement."""
    _insert(None, deliveries, {})


def _insert(
    notification: Notification | None,
    deliveries: Sequence[Delivery],
    notes: Mapping[uuid.UUID, str],
) -> None:
    events = [
        DeliveryEvent(delivery=d, status=d.status, detail=_noted(d, notes.get(d.id))[:500])
        for d in deliveries
    ]
    alone = connection.vendor == "postgresql" and not changes_announced(deliveries)
    with nullcontext() if alone or connection.in_atomic_block else transaction.atomic():
        _insert_rows(notification, deliveries, events)
        changes_announce(deliveries)  # those skipped at creation
        enqueue_on_commit(d for d in deliveries if d.status == DeliveryStatus.QUEUED)


def _insert_rows(
    notification: Notification | None,
    deliveries: Sequence[Delivery],
    events: Sequence[DeliveryEvent],
) -> None:
    if connection.vendor != "postgresql":
        if notification is not None:
            notification.save(force_insert=True)
        Delivery.objects.bulk_create(deliveries)
        DeliveryEvent.objects.bulk_create(events)
    else:
        parts = [] if notification is None else [_insert_sql(Notification, [notification])]
        if deliveries:
            parts += [_insert_sql(Delivery, deliveries), _insert_sql(DeliveryEvent, events)]
        if not parts:
            return
        *ctes, (last, last_params) = parts
        sql = "".join(
            f"{'WITH' if i == 0 else ','} i{i} AS ({part}) " for i, (part, _) in enumerate(ctes)
        )
        params = [p for _, part_params in ctes for p in part_params] + last_params
        with bound_cursor(connection.alias) as cursor:
            cursor.execute(sql + last, params)
        rows = [*deliveries] if notification is None else [notification, *deliveries]
        for row in rows:
            row._state.adding, row._state.db = False, connection.alias


def _insert_sql(model: type[models.Model], rows: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """Django's own INSERT for these rows (its column preparation and `auto_now` values), as SQL
    to embed: one row as Django writes it (`VALUES (%s, ...)`), several as one JSON parameter
    (`json_populate_recordset`, `_json_rows`). An auto-increment primary key is left to the
    database, as `bulk_create` does.

    The statement's text depends only on the model and on one row or many, so it is built once
    (`_InsertShape`); each call prepares the values as Django's compiler does (`insert_values`:
    the same values, without walking Django's field methods for each). Rows holding an
    expression or a value JSON cannot carry, or models whose fields Django would not insert that
    way, take Django's compiler itself (tests/apps/deliveries/test_insert_sql.py compares the
    rows each writes)."""
    shape = _insert_shape(model, connection.alias)
    if shape is None:
        return _insert_sql_by_django(model, rows)
    many = len(rows) != 1
    try:
        values = values_prepared(
            shape.as_json if many else shape.as_params, rows, connections[shape.alias]
        )
    except ExpressionValue:
        return _insert_sql_by_django(model, rows)
    if not many:
        return shape.one_row, values[0]
    document = _json_rows(shape.columns, values)
    if document is None:
        return _insert_sql_by_django(model, rows)
    return shape.many_rows, [document]


def _json_rows(columns: Sequence[str], values: Sequence[Sequence[Any]]) -> str | None:
    """The prepared rows as one JSON array of objects keyed by column, or None when a value is
    of a type it cannot carry exactly. One text parameter instead of an array per column: psycopg
    inspects and dumps an array in Python (for a POST's deliveries, 21 of them), the JSON is
    written by the json module's C encoder."""
    try:
        return json.dumps(
            [dict(zip(columns, row, strict=True)) for row in values],
            default=_json_value,
            separators=(",", ":"),
        )
    except TypeError:
        return None


def _json_value(value: Any) -> Any:
    """What `json.dumps` cannot write itself, as the text PostgreSQL reads back to the same value
    (`json_populate_recordset` converts each member with its column type's input function)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()
    # A JSONField's value as Django adapts it, written as its own `json.dumps` would write it
    # (not with an encoder of the field's: that one's output is not ours to reproduce).
    if isinstance(value, Jsonb) and value.dumps is json.dumps:
        return value.obj
    raise TypeError(f"{type(value).__name__} is not carried as JSON here")


def _insert_sql_by_django(
    model: type[models.Model], rows: Sequence[models.Model]
) -> tuple[str, list[Any]]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    query = InsertQuery(model)
    query.insert_values(fields, list(rows))
    # By alias: the compiler then holds the connection itself, not the thread-local proxy
    # `django.db.connection` (a lookup per value prepared: a third of a bulk's CPU).
    [(sql, params)] = query.get_compiler(using=connection.alias).as_sql()
    return sql, list(params)


@dataclass(frozen=True)
class _InsertShape:
    alias: str
    fields: list[models.Field[Any, Any]]
    columns: list[str]
    one_row: str  # INSERT ... VALUES (%s, ...)
    many_rows: str  # INSERT ... SELECT ... FROM json_populate_recordset(NULL::table, %s::json)
    as_params: list[Preparer]  # each field's value as a parameter of `one_row`
    as_json: list[Preparer]  # ... as a member of `many_rows`' JSON document (`_json_rows`)


@lru_cache(maxsize=64)
def _insert_shape(model: type[models.Model], alias: str) -> _InsertShape | None:
    """The statement Django's PostgreSQL insert compiler writes for this model (for one row),
    or None where it would write another (other databases, custom placeholders, types it does
    not know)."""
    conn = connections[alias]
    if conn.vendor != "postgresql":
        return None
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    if any(
        hasattr(f, "get_placeholder")
        or (getattr(f, "target_field", f) if f.is_relation else f).get_internal_type()
        not in conn.data_types
        for f in fields
    ):
        return None
    qn = conn.ops.quote_name
    columns = [str(f.column) for f in fields]
    names = ", ".join(qn(c) for c in columns)
    head = f"INSERT INTO {qn(meta.db_table)} ({names})"
    one = f"{head} VALUES ({', '.join('%s' for _ in fields)})"
    # The table's row type converts each member (its column's type, length included); a member
    # the JSON lacks would be NULL, and every column is given. Names are the model's; the rows
    # are one parameter.
    table = qn(meta.db_table)
    many = f"{head} SELECT {names} FROM json_populate_recordset(NULL::{table}, %s::json)"  # noqa: S608
    return _InsertShape(
        alias,
        fields,
        columns,
        one,
        many,
        preparers(fields, conn),
        preparers(fields, conn, json_ready=True),
    )
