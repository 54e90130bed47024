from __future__ import annotations

from django.db import models

from apps.recipients.models import Recipient


class InboxMessage(models.Model):
    """An in-app notification in a recipient's inbox. Ids increase: `since=` pages by id."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="inbox")
    delivery = models.OneToOneField(
        "deliveries.Delivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=500, blank=True, default="")
    body = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The recipient opened the bell with this message in it (a read is also seen).
    seen_at = models.DateTimeField(null=True, blank=True)
    # Put away by the recipient: out of the default listing and of the unread and unseen
    # counts, still listed with `?status=archived` until unarchived.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="inbox_recipient_unread"),
            # Pages (newest first) and catch-up (`since=`) walk one recipient's ids.
            models.Index(fields=["recipient", "id"], name="inbox_recipient_id"),
            # The unseen count (the bell's badge): only the unseen rows.
            models.Index(
                fields=["recipient"],
                condition=models.Q(seen_at__isnull=True),
                name="inbox_recipient_unseen",
            ),
            # The badge's counts skip archived rows: only the rows they count.
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True, archived_at__isnull=True),
                name="inbox_recipient_unread_active",
            ),
            models.Index(
                fields=["recipient"],
                condition=models.Q(seen_at__isnull=True, archived_at__isnull=True),
                name="inbox_recipient_unseen_active",
            ),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.title or self.body[:40]
