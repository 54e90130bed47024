from __future__ import annotations

from django.db import models

from apps.clients.models import ApiClient
from apps.recipients.models import Recipient

KEY_MAX = 100


class Topic(models.Model):
    """Something recipients follow (an order, a thread): one trigger notifies every subscriber."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="topics")
    key = models.CharField(max_length=KEY_MAX)
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="topic_unique_client_key")
        ]

    def __str__(self) -> str:
        return self.key


class Subscription(models.Model):
    """A recipient following a topic. The fan-out walks a topic's subscribers in recipient id
    order (the unique index below), so its cursor is the last recipient id it reached."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    recipient = models.ForeignKey(
        Recipient, on_delete=models.CASCADE, related_name="topic_subscriptions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "recipient"], name="subscription_unique_topic_recipient"
            )
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id} follows {self.topic_id}"
