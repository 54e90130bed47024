"""A cursor that sends its statement's values apart from the SQL (server-side binding), and lets
psycopg prepare a statement it has run a few times on its connection.

Django's psycopg cursors bind client-side: each statement goes out as text with its values quoted
in (Python's work: for `POST /api/v1/notifications`' creation statement, 26 arrays, about a
fifth of the request's CPU) and PostgreSQL parses, analyses and plans it again every time (about
40% of its backend's CPU per POST). For the few statements the API runs on every request
(and the topic fan-out worker's delivery INSERTs, which share the creation INSERT's helper),
`bound_cursor` gives a cursor of Django's own server-side binding class instead: the values go
out as parameters (`$1`, ...) in psycopg's binary formats, and once a statement has run
`prepare_threshold` times on a connection (5; `DB_PREPARED_STATEMENTS=false`: never), psycopg
prepares it there, so PostgreSQL parses and plans it once per pooled connection.

Everything else about the cursor is Django's: query logging (`CaptureQueriesContext`), the
execute wrappers, error translation and django-prometheus' counters. A statement given to it
must be one that PostgreSQL can type with its values apart: an explicit cast where the type of
a parameter is not clear from its place (`UNNEST((%s)::uuid[])`). Elsewhere (SQLite) it is
Django's ordinary cursor.

A prepared statement outlives a migration from another process. When the migration changes the
type of a column a prepared statement returns, PostgreSQL refuses every later run of it on that
connection ("cached plan must not change result type"), and psycopg only forgets its prepared
statements on a ROLLBACK, a `DEALLOCATE ALL` or a `DISCARD ALL` (`psycopg/_preparing.py`): the
API's lone INSERT runs outside a transaction, so no ROLLBACK would come and the connection would
fail every request until recycled. So on that error outside a transaction `bound_cursor` sends
`DEALLOCATE ALL` through the connection (psycopg reads its command status and forgets them too)
before the error goes on; `bound_rows`, for reads only, then runs the statement once more. A
write is never run again here (the error comes before the statement runs, but a retry of a
write is not this module's call). Inside a transaction the error has aborted it: the ROLLBACK
that ends it clears them, and `stale_plan_rerun` runs the whole transaction once more (the
error came before its COMMIT, so nothing of it was committed): a POST that opens one around
its prepared read (with an idempotency key, inline recipients, a throttle, ...) is served too
rather than failing once per pooled connection. A topic's transaction has no prepared read
(its deliveries are written by the fan-out worker), so the rerun has nothing to do for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

# The plan cache's refusal (PostgreSQL's plancache.c, RevalidateCachedQuery): checked by its SQL
# state and the function that raised it, not by its message, which the server may translate.
_STALE_PLAN_SQLSTATE = "0A000"  # feature_not_supported
_STALE_PLAN_SOURCE = "RevalidateCachedQuery"

# Set on a stale-plan error raised inside a transaction (`bound_cursor`): one that the
# transaction's ROLLBACK undoes, unlike one raised after a COMMIT (by an on_commit callback).
_IN_TRANSACTION = "_bound_stale_plan_in_transaction"

T = TypeVar("T")

logger = logging.getLogger(__name__)


@contextmanager
def bound_cursor(using: str = "default") -> Iterator[CursorWrapper]:
    """A Django cursor on `using` with server-side binding (PostgreSQL with psycopg 3)."""
    conn = connections[using]
    if conn.vendor != "postgresql" or not _psycopg3():
        with conn.cursor() as cursor:
            yield cursor
        return
    # As `BaseDatabaseWrapper._cursor()`: the health check (persistent connections), connecting.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        raw = _cursor_class(using, conn.vendor)(conn.connection)
    _timezone(conn, raw)
    # As `BaseDatabaseWrapper.cursor()` wraps what `create_cursor` returns (`_prepare_cursor`).
    conn.validate_thread_sharing()
    wrapped = conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)
    try:
        with wrapped as cursor:
            yield cursor
    except DatabaseError as exc:
        if _stale_plan(exc):
            if conn.in_atomic_block:
                setattr(exc, _IN_TRANSACTION, True)
            else:
                _forget_prepared(conn)
        raise


def bound_rows(sql: str, params: Sequence[Any], using: str = "default") -> list[tuple[Any, ...]]:
    """The rows of a read (a statement that writes nothing) run through `bound_cursor`; run once
    more, outside a transaction, when its prepared plan had gone stale (see the module's doc)."""
    try:
        return _fetch(sql, params, using)
    except DatabaseError as exc:
        if not _stale_plan(exc) or connections[using].in_atomic_block:
            raise
    return _fetch(sql, params, using)


def stale_plan_rerun(block: Callable[[], T], using: str = "default") -> T:
    """Run `block`, one outermost transaction on `using` (`transaction.atomic` inside it); once
    more, after `DEALLOCATE ALL`, when a prepared plan went stale inside that transaction (see
    the module's doc). Called inside a caller's transaction it runs once: that transaction is
    aborted, not ours.

    Only an error `bound_cursor` raised inside a transaction, which has ended since (its
    ROLLBACK), is rerun: one from an on_commit callback comes after the COMMIT and goes on. The
    block must let such an error out of its transaction (no savepoint that swallows it and
    commits), its on_commit callbacks must not open transactions that run prepared statements,
    and whatever it does outside the database before the failing statement (Redis, a throttle's
    slots) is done again: undone when it raises, or harmless twice."""
    conn = connections[using]
    if conn.in_atomic_block:
        return block()
    try:
        return block()
    except DatabaseError as exc:
        # Not raised in a transaction (after its COMMIT), or in one the block did not end (still
        # open): not the block's to rerun.
        if not (_stale_plan(exc) and getattr(exc, _IN_TRANSACTION, False)) or conn.in_atomic_block:
            raise
        logger.warning("A prepared plan went stale in a transaction: running it once more: %s", exc)
        # Its ROLLBACK has let psycopg send it already; sent here too, so the rerun never
        # depends on psycopg's bookkeeping (one statement, once per migration and connection).
        _forget_prepared(conn)
        # Inside the handler, so an error of the rerun carries this one in its chain
        # (`__context__`: the rerun's own `__cause__` stays the driver's error, which callers read).
        return block()


def _fetch(sql: str, params: Sequence[Any], using: str) -> list[tuple[Any, ...]]:
    with bound_cursor(using) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _stale_plan(exc: BaseException) -> bool:
    """Whether `exc` (Django's, from psycopg's) is the plan cache refusing a prepared statement
    whose result type changed since it was prepared."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    return (
        getattr(cause, "sqlstate", None) == _STALE_PLAN_SQLSTATE
        and getattr(diag, "source_function", None) == _STALE_PLAN_SOURCE
    )


def _forget_prepared(conn: BaseDatabaseWrapper) -> None:
    """Drop the connection's prepared statements on the server and in psycopg: psycopg clears
    its own when a statement it runs answers `DEALLOCATE ALL` while it holds prepared ones (as
    here: the one that failed). Through Django's cursor, so the query log shows it."""
    with conn.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")


@lru_cache(maxsize=1)
def _psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


@lru_cache(maxsize=8)
def _cursor_class(alias: str, vendor: str) -> type[Any]:
    """Django's server-side binding cursor, counted by django-prometheus as the others are."""
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        ServerBindingCursor,  # defined under psycopg 3 only: the stubs do not see it
    )
    from django_prometheus.db.common import ExportingCursorWrapper

    class BoundCursor(ServerBindingCursor):  # type: ignore[misc]
        def _send_query_prepared(
            self, name: bytes, pgq: Any, *, binary: bool | None = None
        ) -> None:
            # psycopg keeps the statement it ran (`_query`, what Django logs as the executed
            # query under client-side binding) only when it did not run a prepared one: keep it
            # then too, or the query log (and CaptureQueriesContext) would hold None.
            self._query = pgq
            super()._send_query_prepared(name, pgq, binary=binary)

    return ExportingCursorWrapper(BoundCursor, alias, vendor)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _tz_names() -> tuple[Any, Any, Any]:
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        TIMESTAMPTZ_OID,  # these three: psycopg 3 only, unseen by the stubs
        Format,
        register_tzloader,
    )

    return TIMESTAMPTZ_OID, Format.TEXT, register_tzloader


def _timezone(conn: Any, raw: Any) -> None:
    """As Django's `create_cursor`: the cursor's timestamp loader in the connection's zone when
    the connection's adapters disagree with it."""
    oid, text, register_tzloader = _tz_names()
    tzloader = conn.connection.adapters.get_loader(oid, text)
    if conn.timezone != tzloader.timezone:
        register_tzloader(conn.timezone, raw)
