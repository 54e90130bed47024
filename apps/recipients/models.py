from __future__ import annotations

import uuid

from django.db import models

from apps.clients.models import ApiClient
from apps.recipients.validation import DEVICE_TOKEN_MAX, validate_device_token


class Recipient(models.Model):
    """A person a client notifies, known to the client by `external_id`."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="recipients")
    external_id = models.CharField(max_length=200)
    # What recipient tokens name: not guessable, unlike the sequential primary key.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="E.164")
    locale = models.CharField(max_length=20, default="en")
    timezone = models.CharField(max_length=64, default="UTC")
    name = models.CharField(max_length=200, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_id"], name="recipient_unique_ext_id"
            )
        ]

    def __str__(self) -> str:
        return self.external_id


class Preference(models.Model):
    """Opt-outs, quiet hours and the daily cap of one recipient."""

    recipient = models.OneToOneField(Recipient, on_delete=models.CASCADE, related_name="preference")
    # {"sms": false}: a channel set to false is opted out.
    channels = models.JSONField(default=dict, blank=True)
    # {"marketing": {"email": false}}
    categories = models.JSONField(default=dict, blank=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    # {"social": "hourly" | "daily@09:00" | "off"}: a digest cadence per category, in the
    # recipient's timezone (notifier/digests.py).
    digest = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.recipient}"


class Device(models.Model):
    class Platform(models.TextChoices):
        IOS = "ios"
        ANDROID = "android"
        WEB = "web"

    # The recipient's client, kept on the row so that a token is unique per client: several
    # clients may register one token, and each sees and moves only its own row.
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="devices")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    # Bounded (and visible ASCII) so that (client, token) always fits one btree index row.
    token = models.CharField(max_length=DEVICE_TOKEN_MAX, validators=[validate_device_token])
    platform = models.CharField(max_length=10, choices=Platform.choices)
    active = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(platform__in=["ios", "android", "web"]),
                name="device_platform_valid",
            ),
            models.UniqueConstraint(fields=["client", "token"], name="device_unique_client_token"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.token[:12]}…"


class Suppression(models.Model):
    """An address that must not be sent to (bounced, spam report, unsubscribed)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="suppressions")
    channel = models.CharField(max_length=10)
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "channel", "address"], name="suppression_unique_address"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} ({self.reason})"


class RecipientEvent(models.Model):
    """The recipient's own timeline (shown in the admin): what the recipient did through the
    links the service hosts, as opposed to what was sent to them (the delivery timelines)."""

    class Kind(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed"
        PREFERENCES_UPDATED = "preferences_updated"

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    category = models.CharField(max_length=50, blank=True, default="")
    channel = models.CharField(max_length=10, blank=True, default="")
    # Where it came from: `one-click` (RFC 8058 POST), `link` (the confirm page), `preferences`
    # (the hosted preference centre), `api` (PUT /recipients/{id}/preferences).
    source = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["recipient", "-created_at"], name="recipient_event_time")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.category}/{self.channel}".rstrip("/ ")
