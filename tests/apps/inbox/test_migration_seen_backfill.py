"""Migration 0004: messages read before `seen_at` existed are seen (seen_at = read_at); unread
ones stay unseen."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("inbox", "0003_seen_at_throttle_escalation")]
AFTER = [("inbox", "0004_seen_at_backfill_unseen_index")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_historical_read_messages_are_seen_and_unread_ones_are_not() -> None:
    executor = MigrationExecutor(connection)
    # The other apps stay at their latest state (the recipients' columns are all there).
    before = [n for n in executor.loader.graph.leaf_nodes() if n[0] != "inbox"] + BEFORE
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    client = old_apps.get_model("clients", "ApiClient").objects.create(name="c")
    recipient = old_apps.get_model("recipients", "Recipient").objects.create(
        client=client, external_id="user-1"
    )
    message = old_apps.get_model("inbox", "InboxMessage").objects
    read_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    read = message.create(recipient=recipient, body="read", read_at=read_at).pk
    unread = message.create(recipient=recipient, body="unread").pk

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new_apps = executor.loader.project_state(AFTER).apps
    seen = dict(new_apps.get_model("inbox", "InboxMessage").objects.values_list("pk", "seen_at"))
    assert seen == {read: read_at, unread: None}
