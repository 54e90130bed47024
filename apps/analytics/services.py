"""The aggregator: folds the delivery timeline (and the attempts' costs) into the hourly
Rollup rows, exactly once (docs/analytics.md, "How the numbers are kept").

One fold is one transaction: take the next uncounted rows, marking them counted (locked: a
second fold running at once takes others), add what they count into the rollup rows. Killed or
failing anywhere before the commit, the fold leaves nothing: the rows stay uncounted and the
next fold takes them. Whether a row is a "first" is a fact of the timeline (the delivery's
earlier rows), not of what was folded before, so the order folds run in never matters."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q

from apps.analytics.fold_selectors import AttemptRow, EventRow
from apps.analytics.increments import Increment, Key, increments_of
from apps.analytics.models import COUNTERS, Rollup, bucket_columns
from apps.deliveries.counting import attempts_take, events_take

logger = logging.getLogger(__name__)

# A fold that fails with an OperationalError (a deadlock, which PostgreSQL breaks by aborting
# one side: folds write their rollup keys in one sorted order, so only a fold of another order,
# e.g. an older version during a rolling deploy, can meet one; a lost connection; SQLite's
# "database is locked") has its transaction rolled back whole, so it is simply run again, this
# many times.
FOLD_TRIES = 3
# Rollup keys looked up (and locked) per statement.
LOOKUP_CHUNK = 200


@dataclass(frozen=True)
class Folded:
    events: int
    attempts: int
    rollups: int

    @property
    def rows(self) -> int:
        return self.events + self.attempts


def rollup_fold(*, limit: int | None = None) -> Folded:
    """One fold: up to `limit` (ANALYTICS_FOLD_BATCH) timeline rows and as many attempt rows
    into the rollup, in one transaction. What it took."""
    limit = limit or settings.ANALYTICS_FOLD_BATCH
    with transaction.atomic():
        # Taken and marked counted in this transaction (apps/deliveries/counting.py).
        events = [EventRow(*row) for row in events_take(limit=limit)]
        attempts = [AttemptRow(*row) for row in attempts_take(limit=limit)]
        increments = increments_of(events, attempts)
        _rollups_add(increments)
    return Folded(len(events), len(attempts), len(increments))


def rollups_fold_pending(
    *, budget_seconds: float | None = None, limit: int | None = None
) -> Folded:
    """Fold batches until none is full (nothing left) or `budget_seconds`
    (ANALYTICS_FOLD_BUDGET_SECONDS) have passed. Totals folded."""
    limit = limit or settings.ANALYTICS_FOLD_BATCH
    budget = settings.ANALYTICS_FOLD_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    events = attempts = rollups = 0
    tries = 0
    while True:
        try:
            folded = rollup_fold(limit=limit)
        except OperationalError:
            tries += 1
            if tries >= FOLD_TRIES:
                raise
            logger.warning("analytics fold rolled back; trying again", exc_info=True)
            continue
        tries = 0
        events, attempts = events + folded.events, attempts + folded.attempts
        rollups += folded.rollups
        if max(folded.events, folded.attempts) < limit or time.monotonic() >= deadline:
            return Folded(events, attempts, rollups)


def _rollups_add(increments: dict[Key, Increment]) -> None:
    """Add the increments into their rollup rows: one `INSERT ... ON CONFLICT DO UPDATE` per
    chunk of keys, each column added to in the statement (a row another fold holds is waited
    for, then added to), then the skip reasons of the few keys that have some. Keys are
    written in one sorted order by every fold (PostgreSQL applies a multi-row upsert in the
    order of its VALUES), so that two folds wait on each other instead of deadlocking."""
    if not increments:
        return
    keys = sorted(increments)
    # SQLite's statements take at most `max_query_params` parameters (999 as Django counts).
    limit = connection.features.max_query_params
    size = min(UPSERT_CHUNK, limit // len(UPSERT_COLUMNS)) if limit else UPSERT_CHUNK
    with connection.cursor() as cursor:
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            cursor.execute(_upsert_sql(len(chunk)), _upsert_params(chunk, increments))
    reasons = [key for key in keys if increments[key].skipped_reasons]
    # In chunks: SQLite refuses an OR of much more than 1000 terms ("Expression tree is too
    # large"), and a batch that always fails would stop the queue behind it.
    for start in range(0, len(reasons), LOOKUP_CHUNK):
        match = reduce(or_, (Q(**_fields(key)) for key in reasons[start : start + LOOKUP_CHUNK]))
        rows = list(Rollup.objects.select_for_update().filter(match).order_by(*KEY_COLUMNS))
        for row in rows:
            _reasons_add(row, increments[_key_of(row)].skipped_reasons)
        Rollup.objects.bulk_update(rows, ["skipped_reasons"])


KEY_COLUMNS = ("hour", "client_id", "template_id", "channel", "variant", "provider")
# Every column a fold adds to, in the upsert's order.
ADDED = (
    *COUNTERS,
    "accept_to_sent_ms_sum",
    *bucket_columns("accept_to_sent"),
    "sent_to_delivered_ms_sum",
    *bucket_columns("sent_to_delivered"),
    "cost_micros",
)
COUNTED = frozenset(COUNTERS)
UPSERT_COLUMNS = (*KEY_COLUMNS, *ADDED, "skipped_reasons")
# Rollup keys per upsert statement (53 parameters a row), fewer where the database limits them.
UPSERT_CHUNK = 200


@lru_cache(maxsize=8)
def _upsert_sql(rows: int) -> str:
    table = Rollup._meta.db_table
    columns = UPSERT_COLUMNS
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in ADDED)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)} "  # noqa: S608 - our own table and columns
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {added}"
    )


def _upsert_params(keys: list[Key], increments: dict[Key, Increment]) -> list[Any]:
    params: list[Any] = []
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores it (SQLite: UTC text)
    for key in keys:
        inc = increments[key]
        if not inc.counters.keys() <= COUNTED:
            raise ValueError(f"no rollup column for {set(inc.counters) - COUNTED}")
        params += [adapt(key.hour), key.client_id, key.template_id, key.channel]
        params += [key.variant, key.provider]
        params += [inc.counters.get(name, 0) for name in COUNTERS]
        params += [inc.accept_to_sent_ms_sum, *inc.accept_to_sent_ms_hist]
        params += [inc.sent_to_delivered_ms_sum, *inc.sent_to_delivered_ms_hist]
        params += [inc.cost_micros, "{}"]  # a new row's reasons: added after, by the ORM
    return params


def _fields(key: Key) -> dict[str, object]:
    return {
        "hour": key.hour,
        "client_id": key.client_id,
        "template_id": key.template_id,
        "channel": key.channel,
        "variant": key.variant,
        "provider": key.provider,
    }


def _key_of(row: Rollup) -> Key:
    return Key(row.hour, row.client_id, row.template_id, row.channel, row.variant, row.provider)


def _reasons_add(row: Rollup, added: Counter[str]) -> None:
    reasons = dict(row.skipped_reasons or {})
    for reason, n in added.items():
        reasons[reason] = int(reasons.get(reason, 0)) + n
    row.skipped_reasons = reasons
