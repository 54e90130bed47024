"""`bound_cursor`: the statement's values go apart from its SQL, and a statement run a few times
on a connection is prepared there once (unless DB_PREPARED_STATEMENTS is off); Django's own
cursors stay client-side and prepare nothing. Every execution is in Django's query log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.bound import bound_cursor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _prepared(like: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", [like]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_statement_run_often_is_prepared_once_on_its_connection() -> None:
    with CaptureQueriesContext(connection) as queries:
        for i in range(8):
            with bound_cursor() as cursor:
                cursor.execute("SELECT %s::int + 1 AS bound_probe", [i])
                assert cursor.fetchone() == (i + 1,)

    # Sent as a parameter ($1), logged every time (also once it ran prepared).
    assert [q["sql"] for q in queries.captured_queries] == ["SELECT $1::int + 1 AS bound_probe"] * 8
    assert _prepared("%bound_probe%") == ["SELECT $1::int + 1 AS bound_probe"]


@pytest.mark.django_db
def test_djangos_own_cursor_binds_client_side_and_prepares_nothing() -> None:
    with CaptureQueriesContext(connection) as queries:
        for i in range(8):
            with connection.cursor() as cursor:
                cursor.execute("SELECT %s::int + 1 AS client_probe", [i])
                assert cursor.fetchone() == (i + 1,)

    assert queries.captured_queries[-1]["sql"] == "SELECT 7::int + 1 AS client_probe"
    assert _prepared("%client_probe%") == []


@pytest.mark.parametrize(("value", "threshold"), [(None, "5"), ("false", "None")])
def test_prepared_statements_can_be_switched_off(value: str | None, threshold: str) -> None:
    """Behind a pooler that cannot keep prepared statements apart: DB_PREPARED_STATEMENTS=false
    leaves psycopg's threshold unset (Django's default: nothing prepared)."""
    env = {k: v for k, v in os.environ.items() if k != "DB_PREPARED_STATEMENTS"}
    if value is not None:
        env["DB_PREPARED_STATEMENTS"] = value
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/nothing"  # read, never connected to
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS'].get('prepare_threshold'))"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed snippet
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == threshold
