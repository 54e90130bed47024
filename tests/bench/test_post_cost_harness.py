"""bench.post_cost's own checks, and the ANALYZE the API runs are preceded by."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import connection

from bench import env
from bench.post_cost import databases_to_flush, statuses_check


def test_a_run_with_any_answer_but_202_fails() -> None:
    statuses_check(Counter({("/api/v1/notifications", "202"): 400, ("/bench/bare", "202"): 400}))
    for status in ("429", "503"):
        shed = Counter(
            {("/api/v1/notifications", "202"): 399, ("/api/v1/notifications", status): 1}
        )
        with pytest.raises(RuntimeError, match=status):
            statuses_check(shed)


def test_the_brokers_database_is_flushed_too_when_apart() -> None:
    assert databases_to_flush("redis://r/5", "redis://r/5") == ["redis://r/5"]
    assert databases_to_flush("redis://r/5", "redis://r/6") == ["redis://r/5", "redis://r/6"]


@pytest.mark.django_db
def test_analyze_refreshes_the_statistics_of_every_table_a_run_writes(
    django_assert_num_queries: Any,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(env.WRITTEN_TABLES)]
        )
        assert {r[0] for r in cursor.fetchall()} == set(env.WRITTEN_TABLES)  # no stale names
    with django_assert_num_queries(len(env.WRITTEN_TABLES)) as queries:
        env.analyze()
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["ANALYZE"] * len(
        env.WRITTEN_TABLES
    )
