"""Partial indexes for the unread and unseen counts, which skip archived messages (0005): the
older indexes do not carry `archived_at IS NULL`, so the counts lost their index-only path.

Built CONCURRENTLY (PostgreSQL's CREATE INDEX CONCURRENTLY: the table takes writes while it
builds), which cannot run in a transaction, hence `atomic = False`. If a concurrent build
fails it leaves an INVALID index: drop it and migrate again. Other databases (SQLite under
`make run`) have no concurrent build: there the indexes are created the ordinary way."""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label: str, schema_editor: Any, *args: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, *args)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, *args)

    def database_backwards(self, app_label: str, schema_editor: Any, *args: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, *args)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, *args)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("inbox", "0005_archived_at"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(("archived_at__isnull", True), ("read_at__isnull", True)),
                fields=["recipient"],
                name="inbox_recipient_unread_active",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(("archived_at__isnull", True), ("seen_at__isnull", True)),
                fields=["recipient"],
                name="inbox_recipient_unseen_active",
            ),
        ),
    ]
