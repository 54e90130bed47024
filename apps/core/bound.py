"""A cursor that sends its statement's values apart from the SQL (server-side binding), and lets
psycopg prepare a statement it has run a few times on its connection.

Django's psycopg cursors bind client-side: each statement goes out as text with its values quoted
in (Python's work: for `POST /api/v1/notifications`' creation statement, 26 arrays, about a
fifth of the request's CPU) and PostgreSQL parses, analyses and plans it again every time (about
40% of its backend's CPU per POST). For the few statements the API runs on every request,
`bound_cursor` gives a cursor of Django's own server-side binding class instead: the values go
out as parameters (`$1`, ...) in psycopg's binary formats, and once a statement has run
`prepare_threshold` times on a connection (5; `DB_PREPARED_STATEMENTS=false`: never), psycopg
prepares it there, so PostgreSQL parses and plans it once per pooled connection.

Everything else about the cursor is Django's: query logging (`CaptureQueriesContext`), the
execute wrappers, error translation and django-prometheus' counters. A statement given to it
must be one that PostgreSQL can type with its values apart: an explicit cast where the type of
a parameter is not clear from its place (`UNNEST((%s)::uuid[])`). Elsewhere (SQLite) it is
Django's ordinary cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper


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
    with wrapped as cursor:
        yield cursor


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


def _timezone(conn: Any, raw: Any) -> None:
    """As Django's `create_cursor`: the cursor's timestamp loader in the connection's zone when
    the connection's adapters disagree with it."""
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        TIMESTAMPTZ_OID,  # these three: psycopg 3 only, unseen by the stubs
        Format,
        register_tzloader,
    )

    tzloader = conn.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if conn.timezone != tzloader.timezone:
        register_tzloader(conn.timezone, raw)
