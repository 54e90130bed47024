"""The deliveries table's indexes after migration 0013: every lookup the code makes by recipient,
notification, provider message id and digest window still has an index (the planner is told to
avoid sequential scans, and must find one), the dropped ones are gone, and the migration goes
back and forth."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("deliveries", "0012_best_time")]
AFTER = [("deliveries", "0013_delivery_fewer_indexes")]
DROPPED = {
    "deliveries_delivery_recipient_id_7889959a",
    "deliveries_delivery_notification_id_2ed7a068",
    "deliveries_delivery_provider_message_id_147fe7fa",
    "deliveries_delivery_provider_message_id_147fe7fa_like",
    "deliveries_delivery_digest_id_f071ffed",
}
ADDED = {"delivery_provider_message_id", "delivery_digest"}
LOOKUPS = {
    # The items of a window (lifecycle/digests.py), and Digest's SET NULL when one goes.
    "SELECT id FROM deliveries_delivery "
    "WHERE digest_id = '2c3f82f9-1ec6-4dd1-b022-abd0cd8a4a77'": "delivery_digest",
    "UPDATE deliveries_delivery SET digest_id = NULL "
    "WHERE digest_id IN ('2c3f82f9-1ec6-4dd1-b022-abd0cd8a4a77')": "delivery_digest",
    # Erasure and the recipient's CASCADE; the daily cap.
    "DELETE FROM deliveries_delivery WHERE recipient_id IN (1, 2)": "delivery_recipient_sent",
    # A notification's deliveries (detail, cancel, CASCADE).
    "SELECT id FROM deliveries_delivery "
    "WHERE notification_id = '2c3f82f9-1ec6-4dd1-b022-abd0cd8a4a77'": "delivery_unique_target",
    # Provider reports (provider_events.py).
    "SELECT id FROM deliveries_delivery "
    "WHERE provider_message_id = 'x' LIMIT 1": "delivery_provider_message_id",
}


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries_delivery'")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("sql", list(LOOKUPS))
def test_each_lookup_of_a_delivery_has_an_index(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test's transaction only
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # "Index Scan using <index> on <table>", or "Bitmap Index Scan on <index>"
    assert re.search(rf"Index Scan (using|on) {LOOKUPS[sql]}\b", plan), plan
    assert "Seq Scan" not in plan


@pytest.mark.django_db
def test_the_dropped_indexes_are_gone_and_the_digest_index_is_partial() -> None:
    indexes = _indexes()

    assert not DROPPED & indexes
    assert indexes >= ADDED
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'delivery_digest'")
        (definition,) = cursor.fetchone()
    assert definition.endswith("WHERE (digest_id IS NOT NULL)")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_the_migration_goes_back_and_forth() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    before = _indexes()

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    after = _indexes()

    assert before >= DROPPED
    assert not ADDED & before
    assert after == (before - DROPPED) | ADDED
