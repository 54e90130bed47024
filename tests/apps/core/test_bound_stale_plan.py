"""A statement prepared by `bound_cursor` outlives a migration from another process that changes
the type of a column it returns: PostgreSQL then refuses the prepared plan ("cached plan must not
change result type"). Outside a transaction nothing else would clear it, so a read is run again
after `DEALLOCATE ALL`, a write is not run again but its connection recovers, and inside a
transaction the ROLLBACK that ends it clears the statements (`stale_plan_rerun` then runs an
outermost transaction once more).

These tests commit (`transaction=True`): the ALTER from a second connection needs the table's
lock, which a test's own transaction would hold."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from django.db import DataError, NotSupportedError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core.bound import bound_cursor, bound_rows, stale_plan_rerun
from tests.support.sessions import other_session

TABLE = "bound_stale_probe"
READ = f"SELECT id, label FROM {TABLE} WHERE id = %s"  # noqa: S608 - a fixed name
READ_PREPARED = f"SELECT id, label FROM {TABLE}%"  # noqa: S608 - a LIKE pattern
WRITE = f"INSERT INTO {TABLE} (id, label) VALUES (%s, %s) RETURNING label"  # noqa: S608
STALE = "cached plan must not change result type"


@pytest.fixture
def other() -> Iterator[psycopg.Connection]:
    """The probe table with one row, and the second session that alters it."""
    conn = other_session()
    conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, label varchar(20) NOT NULL)")
    conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'one')")  # noqa: S608
    try:
        yield conn
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.close()


def _prepared(like: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [like]
        )
        return int(cursor.fetchone()[0])


def _retype(other: psycopg.Connection, to: str) -> None:
    other.execute(f"ALTER TABLE {TABLE} ALTER COLUMN label TYPE {to}")


def _prepare_then_retype(other: psycopg.Connection) -> None:
    """The read run past psycopg's prepare threshold, then its column retyped by another
    session: the next run of the prepared read fails with a stale plan."""
    for _ in range(6):
        bound_rows(READ, [1])
    _retype(other, "text")


def _ids_above(other: psycopg.Connection, floor: int) -> list[tuple[int]]:
    return other.execute(
        f"SELECT id FROM {TABLE} WHERE id > %s ORDER BY id",  # noqa: S608
        [floor],
    ).fetchall()


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors it was raised from or while handling, nearest first."""
    found: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in found:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


@pytest.mark.django_db(transaction=True)
def test_a_read_whose_prepared_plan_went_stale_runs_again(other: psycopg.Connection) -> None:
    for _ in range(6):
        assert bound_rows(READ, [1]) == [(1, "one")]
    assert _prepared(READ_PREPARED) == 1
    _retype(other, "text")

    with CaptureQueriesContext(connection) as queries:
        rows = bound_rows(READ, [1])

    assert rows == [(1, "one")]
    assert [q["sql"].split(" ", 1)[0] for q in queries.captured_queries] == [
        "SELECT",
        "DEALLOCATE",
        "SELECT",
    ]
    # psycopg forgot its statements too: it prepares the read afresh, and recovers again after
    # a second migration on the same connection.
    for _ in range(6):
        assert bound_rows(READ, [1]) == [(1, "one")]
    assert _prepared(READ_PREPARED) == 1
    _retype(other, "varchar(40)")
    assert bound_rows(READ, [1]) == [(1, "one")]


@pytest.mark.django_db(transaction=True)
def test_a_write_is_not_run_again_and_its_connection_recovers(other: psycopg.Connection) -> None:
    for i in range(2, 8):
        with bound_cursor() as cursor:
            cursor.execute(WRITE, [i, f"n{i}"])
            assert cursor.fetchone() == (f"n{i}",)
    _retype(other, "text")

    with pytest.raises(NotSupportedError, match=STALE), bound_cursor() as cursor:
        cursor.execute(WRITE, [8, "n8"])

    assert other.execute(f"SELECT count(*) FROM {TABLE} WHERE id = 8").fetchone() == (0,)  # noqa: S608
    with bound_cursor() as cursor:  # the next request's write: prepared statements gone
        cursor.execute(WRITE, [9, "n9"])
        assert cursor.fetchone() == ("n9",)
    assert other.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (8,)  # noqa: S608


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_the_read_fails_and_the_rollback_clears_them(
    other: psycopg.Connection,
) -> None:
    _prepare_then_retype(other)

    with pytest.raises(NotSupportedError), transaction.atomic():
        bound_rows(READ, [1])

    assert bound_rows(READ, [1]) == [(1, "one")]


@pytest.mark.django_db(transaction=True)
def test_a_transaction_whose_prepared_read_went_stale_is_run_once_more(
    other: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    _prepare_then_retype(other)
    runs: list[int] = []

    def block() -> list[tuple[object, ...]]:
        with transaction.atomic():
            runs.append(len(runs))
            with connection.cursor() as cursor:  # a write the first run's ROLLBACK undoes
                cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, 'w')", [10 + len(runs)])  # noqa: S608
            return bound_rows(READ, [1])

    with caplog.at_level(logging.WARNING, logger="apps.core.bound"):
        assert stale_plan_rerun(block) == [(1, "one")]

    assert runs == [0, 1]
    assert other.execute(f"SELECT id FROM {TABLE} ORDER BY id").fetchall() == [(1,), (12,)]  # noqa: S608
    (record,) = [r for r in caplog.records if r.name == "apps.core.bound"]
    assert record.levelno == logging.WARNING
    assert "running it once more" in record.getMessage()
    assert STALE in record.getMessage()  # the first run's error


@pytest.mark.django_db(transaction=True)
def test_a_rerun_that_fails_too_carries_the_first_error(other: psycopg.Connection) -> None:
    _prepare_then_retype(other)
    runs: list[int] = []

    def block() -> list[tuple[object, ...]]:
        with transaction.atomic():
            runs.append(len(runs))
            if len(runs) == 2:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 / 0")
            return bound_rows(READ, [1])

    with pytest.raises(DataError) as raised:
        stale_plan_rerun(block)

    assert runs == [0, 1]
    assert isinstance(raised.value.__cause__, psycopg.errors.DivisionByZero)  # as callers read it
    (first,) = [e for e in _chain(raised.value) if isinstance(e, NotSupportedError)]
    assert STALE in str(first)


@pytest.mark.django_db(transaction=True)
def test_a_stale_plan_after_the_commit_is_not_run_again(other: psycopg.Connection) -> None:
    """An on_commit callback's prepared write fails after the block's COMMIT: the block's row is
    committed, so the error goes on rather than the block (and its row) running once more."""
    for i in range(2, 8):
        with bound_cursor() as cursor:
            cursor.execute(WRITE, [i, f"n{i}"])
    _retype(other, "text")
    runs: list[int] = []

    def announce() -> None:
        with bound_cursor() as cursor:
            cursor.execute(WRITE, [200 + len(runs), "late"])

    def block() -> None:
        with transaction.atomic():
            runs.append(len(runs))
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, 'w')", [100 + len(runs)])  # noqa: S608
            transaction.on_commit(announce)

    with pytest.raises(NotSupportedError, match=STALE):
        stale_plan_rerun(block)

    assert runs == [0]
    assert _ids_above(other, 7) == [(101,)]


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_it_is_not_run_again(other: psycopg.Connection) -> None:
    _prepare_then_retype(other)
    runs: list[int] = []

    def block() -> list[tuple[object, ...]]:
        with transaction.atomic():
            runs.append(len(runs))
            return bound_rows(READ, [1])

    with pytest.raises(NotSupportedError), transaction.atomic():
        stale_plan_rerun(block)

    assert runs == [0]


@pytest.mark.django_db(transaction=True)
def test_another_database_error_is_not_run_again() -> None:
    runs: list[int] = []

    def block() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            runs.append(len(runs))
            cursor.execute("SELECT 1 / 0")

    with pytest.raises(DataError):
        stale_plan_rerun(block)

    assert runs == [0]


@pytest.mark.django_db(transaction=True)
def test_another_unsupported_feature_in_a_transaction_is_not_run_again(
    other: psycopg.Connection,
) -> None:
    """The plan cache's SQL state (0A000) from elsewhere (CheckSelectLocking), through
    `bound_cursor` inside the transaction: only the function that raised it tells it apart."""
    runs: list[int] = []

    def block() -> None:
        with transaction.atomic(), bound_cursor() as cursor:
            runs.append(len(runs))
            cursor.execute(f"SELECT count(*) FROM {TABLE} FOR UPDATE")  # noqa: S608

    with pytest.raises(NotSupportedError, match="FOR UPDATE is not allowed") as raised:
        stale_plan_rerun(block)

    assert runs == [0]
    assert raised.value.__cause__.sqlstate == "0A000"  # type: ignore[union-attr]
