"""Outbound webhooks: a client's endpoints, the outbox of messages to them (one row per event
and endpoint), and every attempt to deliver one."""

from __future__ import annotations

import uuid

from django.db import models

from apps.clients.models import ApiClient


class EventType(models.TextChoices):
    DELIVERY_SENT = "delivery.sent"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_OPENED = "delivery.opened"
    DELIVERY_CLICKED = "delivery.clicked"
    DELIVERY_READ = "delivery.read"
    DELIVERY_FAILED = "delivery.failed"
    DELIVERY_DEAD = "delivery.dead"
    DELIVERY_SKIPPED = "delivery.skipped"
    NOTIFICATION_CANCELLED = "notification.cancelled"
    RECIPIENT_UNSUBSCRIBED = "recipient.unsubscribed"
    RECIPIENT_PREFERENCES_UPDATED = "recipient.preferences_updated"
    # Sent by `POST .../test` only; not subscribable.
    PING = "ping"


SUBSCRIBABLE = [t.value for t in EventType if t is not EventType.PING]


class WebhookEndpoint(models.Model):
    """Where a client wants to hear about its notifications, and which events."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True, default="")
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    # Payloads carry ids and statuses; with this on, unmasked contact data and variables too.
    include_content = models.BooleanField(default=False)
    # `whsec_` + base64: the signing key (kept, not hashed: every message is signed with it).
    secret = models.CharField(max_length=100)
    # The secret before the last rotation, still signing beside it until `expires`.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last delivered one (None: not failing).
    failing_since = models.DateTimeField(null=True, blank=True)
    # Why it was disabled by the service (empty when enabled, or disabled by its client).
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The outbox's one query per batch: a client's enabled endpoints.
            models.Index(
                fields=["client"], condition=models.Q(enabled=True), name="webhook_endpoint_live"
            )
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.client})"


class MessageStatus(models.TextChoices):
    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # an attempt holds it until next_attempt_at (its lease)
    DELIVERED = "delivered"
    DEAD = "dead"  # attempts exhausted, or the endpoint disabled: replayable


class WebhookMessage(models.Model):
    """One event for one endpoint: the outbox row, written in the transaction of the change it
    announces. `event_id` (the `webhook-id` header and the body's `id`) is the same across its
    retries and replays, so receivers can de-duplicate."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_id = models.CharField(max_length=40)
    type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField()
    # `state`, not `status`: that name is the delivery's, which only the lifecycle writes
    # (tests/test_architecture.py); the API shows it as `status`.
    state = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # When a task for it was last published (None: none; the sweep publishes one when due).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_message_one_per_endpoint"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=MessageStatus.values), name="webhook_message_state"
            ),
        ]
        indexes = [
            # The sweep: rows waiting (or held) by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "sending"]),
                name="webhook_message_due",
            ),
            # ...and per endpoint, oldest due first (the claim's lateral join, _CLAIM_SQL).
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=models.Q(state__in=["pending", "sending"]),
                name="webhook_message_endpoint_due",
            ),
            models.Index(fields=["endpoint", "state", "-created_at"], name="webhook_message_list"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a message to its endpoint: the answer's status, time and first 1 KiB."""

    message = models.ForeignKey(
        WebhookMessage, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    status_code = models.IntegerField(null=True, blank=True)
    ok = models.BooleanField()
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-started_at"], name="webhook_attempt_endpoint")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error[:40]}"
