"""Messages read before `seen_at` existed were seen: a read is seen too. Without the backfill
every historical read message would count as unseen on the bell. And the unseen count gets its
own (partial) index, as the unread count has one."""

from django.db import migrations, models

BACKFILL = (
    "UPDATE inbox_inboxmessage SET seen_at = read_at "
    "WHERE seen_at IS NULL AND read_at IS NOT NULL"
)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0003_seen_at_throttle_escalation"),
    ]

    operations = [
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name="inboxmessage",
            index=models.Index(
                condition=models.Q(seen_at__isnull=True),
                fields=["recipient"],
                name="inbox_recipient_unseen",
            ),
        ),
    ]
