"""Partial indexes for the unread and unseen counts, which skip archived messages (0005): the
older indexes do not carry `archived_at IS NULL`, so the counts lost their index-only path.

Built CONCURRENTLY (PostgreSQL's CREATE INDEX CONCURRENTLY: the table takes writes while it
builds), which cannot run in a transaction, hence `atomic = False`. If a concurrent build
fails it leaves an INVALID index: drop it and migrate again."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("inbox", "0005_archived_at"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(("archived_at__isnull", True), ("read_at__isnull", True)),
                fields=["recipient"],
                name="inbox_recipient_unread_active",
            ),
        ),
        AddIndexConcurrently(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(("archived_at__isnull", True), ("seen_at__isnull", True)),
                fields=["recipient"],
                name="inbox_recipient_unseen_active",
            ),
        ),
    ]
