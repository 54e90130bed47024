"""Migration 0002: the rollup's histograms move from JSON lists to a column per bucket, with
the counts written before it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("analytics", "0001_initial")]
AFTER = [("analytics", "0002_histogram_columns")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_the_json_histograms_land_in_their_bucket_columns() -> None:
    executor = MigrationExecutor(connection)
    before = [n for n in executor.loader.graph.leaf_nodes() if n[0] != "analytics"] + BEFORE
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    client = old.get_model("clients", "ApiClient").objects.create(name="c")
    template = old.get_model("templates", "Template").objects.create(client=client, key="t")
    a2s = [0, 3, 2] + [0] * 12 + [1]
    s2d = [0] * 5 + [4] + [0] * 10
    row = old.get_model("analytics", "Rollup").objects.create(
        hour=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        client=client,
        template=template,
        channel="email",
        sent=6,
        delivered=4,
        accept_to_sent_ms_hist=a2s,
        sent_to_delivered_ms_hist=s2d,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps
    migrated = new.get_model("analytics", "Rollup").objects.get(pk=row.pk)
    assert [getattr(migrated, f"accept_to_sent_ms_{i}") for i in range(16)] == a2s
    assert [getattr(migrated, f"sent_to_delivered_ms_{i}") for i in range(16)] == s2d
