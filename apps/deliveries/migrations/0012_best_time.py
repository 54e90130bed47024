"""Send-time optimisation (#17): the notification's `send_time` ("best_time" or "") and
`best_time_holdout`, and a partial index on the engagement events (opened, clicked, read) by
delivery and time, which the best-time read of a request's recipients walks.

The index is built CONCURRENTLY on PostgreSQL (the events table takes writes while it builds),
which cannot run in a transaction, hence `atomic = False` (as inbox 0006). If the concurrent
build fails it leaves an INVALID index: drop it and migrate again. Elsewhere (SQLite under
`make run`) a plain CREATE INDEX."""

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
        ("deliveries", "0011_analytics_ab"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="best_time_holdout",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="send_time",
            field=models.CharField(blank=True, db_default="", default="", max_length=20),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="deliveryevent",
            index=models.Index(
                condition=models.Q(("status__in", ["opened", "clicked", "read"])),
                fields=["delivery", "at"],
                name="deliveryevent_engagement",
            ),
        ),
    ]
