"""Fewer indexes on deliveries (#13): every delivery INSERT, and every status UPDATE (the status
is indexed, so none is a HOT update), writes one entry per index. Dropped, with nothing left
unserved:

- `recipient_id` alone: `delivery_recipient_sent (recipient_id, sent_at)` leads with it;
- `notification_id` alone: the unique `delivery_unique_target (notification_id, recipient_id,
  channel)` leads with it;
- the `varchar_pattern_ops` twin of `provider_message_id` that `db_index` adds for LIKE (the
  provider reports look ids up by equality; the admin's search is `icontains`, which no btree
  serves): the plain index stays, now named `delivery_provider_message_id`;
- `digest_id` for every row, though NULL on all but digest items: partial now
  (`delivery_digest`, WHERE digest_id IS NOT NULL), which `digest_id = x` and `IN (...)` (the
  items of a window, SET NULL when a window goes) use.

The new indexes are built first and CONCURRENTLY on PostgreSQL (the table takes writes while
they build), hence `atomic = False` as in 0012; then the old ones are dropped. If a concurrent
build fails it leaves an INVALID index: drop it and migrate again. Reversible: backwards, the
old indexes are created again (plainly) and the new ones dropped.

Deploying on a busy table: each DROP INDEX takes a brief ACCESS EXCLUSIVE lock, which waits
behind any long transaction on deliveries while every new write queues behind it. Run it with a
short lock timeout (`PGOPTIONS='-c lock_timeout=5s' python manage.py migrate`), so it fails fast
instead, and run it again."""

from typing import Any

import django.db.models.deletion
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
        ("deliveries", "0012_best_time"),
        ("recipients", "0004_recipient_events"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(fields=["provider_message_id"], name="delivery_provider_message_id"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("digest__isnull", False)),
                fields=["digest"],
                name="delivery_digest",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="provider_message_id",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="digest",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="items",
                to="deliveries.digest",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="notification",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="deliveries.notification",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="recipient",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="recipients.recipient",
            ),
        ),
    ]
