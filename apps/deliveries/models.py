from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.clients.models import ApiClient
from apps.recipients.models import Recipient
from apps.templates.models import Template, TemplateVersion
from notifier.types import Channel, Priority

CHANNEL_CHOICES = [(c.value, c.value) for c in Channel]
PRIORITY_CHOICES = [(p.value, p.value) for p in Priority]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    READ = "read"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    # Joined a digest window: sent as part of the digest's own delivery (`Delivery.digest`).
    DIGESTED = "digested"


# A worker may claim a delivery only from these.
CLAIMABLE = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)
# ...and a `retrying` one only once its `next_attempt_at` has come (give or take this much for
# a timer that fires early): a duplicate message must not cut its backoff short. Its own
# message, published with the backoff as countdown, is due no earlier.
CLAIM_EARLY_SECONDS = 1.0
# Not yet handed to a provider: cancel applies.
CANCELLABLE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SCHEDULED,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.QUEUED,
    DeliveryStatus.RETRYING,
)
# The provider accepted it (or later confirmation).
ACCEPTED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.READ,
)


class Notification(models.Model):
    """One API request: a template for one or more recipients on one or more channels."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="notifications")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="notifications")
    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="notifications"
    )
    variables = models.JSONField(default=dict, blank=True)
    channels = models.JSONField(default=list)
    fallback = models.JSONField(default=list, blank=True)
    priority = models.CharField(max_length=10, choices=PRIORITY_CHOICES)
    category = models.CharField(max_length=50)
    send_at = models.DateTimeField(null=True, blank=True)
    # "best_time": `"send_at": "best_time"`, each recipient's deliveries scheduled at their most
    # engaged local hour (apps/deliveries/best_time.py); "" otherwise. With it, the percentage
    # of recipients sent at once instead, for an A/B test of the send time (null: none).
    send_time = models.CharField(max_length=20, blank=True, default="", db_default="")
    best_time_holdout = models.PositiveSmallIntegerField(null=True, blank=True)
    # NULL, not "", when absent: the unique constraint applies only to given keys.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # SHA-256 of the canonical request body, to tell a replay from a conflicting reuse.
    request_hash = models.CharField(max_length=64, blank=True, default="")
    recipient_count = models.PositiveIntegerField(default=1)
    # Requested recipients that got no delivery, as [{"recipient": external id, "reason":
    # "unknown_recipient"}]: a delivery row needs a recipient row, and inventing a recipient
    # for an id the client never created would be worse than saying so here.
    # db_default too: a process still running the previous release inserts without the column.
    skipped = models.JSONField(default=list, db_default=[], blank=True)
    # Workflows: the throttle that applied ({"limit", "window", "key"}; the template's unless
    # the request overrode it) and the escalation steps ([{"after", "channels", "unless"}]).
    throttle = models.JSONField(null=True, blank=True)
    escalation = models.JSONField(default=list, blank=True)
    # The digest declaration that applied ({"window", "key", "max_items"}: the template's unless
    # the request overrode it), null if none or the request said `"digest": false`. A topic's
    # fan-out applies it (with the throttle and the escalation) to each chunk of subscribers.
    digest = models.JSONField(null=True, blank=True)
    # The 202 body, returned again verbatim when the same idempotency key and body come back.
    response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="notification_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return str(self.id)


class Delivery(models.Model):
    """One notification to one recipient on one channel: the unit that is sent and retried."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own (each is written by every INSERT and status UPDATE): the notification
    # leads `delivery_unique_target`, the recipient `delivery_recipient_sent`.
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    recipient = models.ForeignKey(
        Recipient, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    priority = models.CharField(max_length=10, choices=PRIORITY_CHOICES)
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    is_fallback = models.BooleanField(default=False)
    # An escalation step (1-based index into notification.escalation), scheduled at creation.
    escalation_step = models.PositiveSmallIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True, default="")
    provider = models.CharField(max_length=30, blank=True, default="")
    # Indexed in Meta (`delivery_provider_message_id`): a plain btree, without the
    # varchar_pattern_ops twin `db_index` adds for LIKE, which nothing here runs.
    provider_message_id = models.CharField(max_length=200, blank=True, default="")
    # Push only: {device token: provider message id} for the devices that already have it, so
    # a retry after a partial fan-out goes to the remaining devices only.
    push_accepted = models.JSONField(default=dict, blank=True)
    # An A/B test's label (TemplateVariant.label) of the copy this delivery was rendered with,
    # set when it is sent; "" outside a test. db_default: a process still running the previous
    # release inserts without the column.
    variant = models.CharField(max_length=20, blank=True, default="", db_default="")
    # A `digested` delivery: the digest window it joined (indexed in Meta where it is set).
    digest = models.ForeignKey(
        "Digest", models.SET_NULL, null=True, blank=True, related_name="items", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "recipient", "channel"], name="delivery_unique_target"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=[c.value for c in Channel]),
                name="delivery_channel_valid",
            ),
        ]
        indexes = [
            # The reconciler and release jobs scan by status and due time.
            models.Index(fields=["status", "updated_at"], name="delivery_status_updated"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
            models.Index(fields=["status", "not_before"], name="delivery_status_not_before"),
            # The daily cap counts a recipient's deliveries sent since their local midnight.
            models.Index(fields=["recipient", "sent_at"], name="delivery_recipient_sent"),
            # Provider reports find their delivery by the provider's message id.
            models.Index(fields=["provider_message_id"], name="delivery_provider_message_id"),
            # A window's items (and SET NULL when it goes): only digest items have one.
            models.Index(
                fields=["digest"], condition=models.Q(digest__isnull=False), name="delivery_digest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient_id} ({self.status})"


class Digest(models.Model):
    """A digest window for (recipient, template, channel, key): open until `closes_at`, then
    sent as one delivery (`delivery`) rendered with its items, or closed empty."""

    class Outcome(models.TextChoices):
        SENT = "sent"
        EMPTY = "empty"  # every item was cancelled: nothing sent
        FAILED = "failed"  # closing failed every try: its items are dead letters

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="digests")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="digests")
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="digests")
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    # The rendered key expression ("" without one): one open window per value.
    key = models.CharField(max_length=200, blank=True, default="")
    max_items = models.PositiveIntegerField(default=50)
    # The recipient's cadence that set `closes_at` ("" when the declaration's window did).
    cadence = models.CharField(max_length=20, blank=True, default="")
    opened_at = models.DateTimeField(auto_now_add=True)
    closes_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True, default="")
    item_count = models.PositiveIntegerField(default=0)
    # Failed tries to close it; each pushes `closes_at` back (apps/deliveries/digests.py).
    close_attempts = models.PositiveSmallIntegerField(default=0)
    # The digest's own delivery, once the window closed with items.
    delivery = models.OneToOneField(
        "Delivery", on_delete=models.SET_NULL, null=True, blank=True, related_name="digest_sent"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "template", "channel", "key"],
                condition=models.Q(closed_at__isnull=True),
                name="digest_one_open_window",
            )
        ]
        indexes = [
            # The beat sweep looks for open windows past their close.
            models.Index(
                fields=["closes_at"],
                condition=models.Q(closed_at__isnull=True),
                name="digest_open_closes_at",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} digest {self.key or '-'} for {self.recipient_id}"


class DeliveryEvent(models.Model):
    """The timeline of a delivery: every status change, with a detail."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    detail = models.CharField(max_length=500, blank=True, default="")
    # Folded into the analytics rollup (apps/analytics): the aggregator takes uncounted rows,
    # adds them up and sets this in the same transaction, so a row is counted exactly once.
    counted = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(counted=False), name="deliveryevent_uncounted"
            ),
            # Send-time optimisation reads a recipient's engagement (opens, clicks, reads) by
            # delivery and time: only those rows, a small part of the table.
            models.Index(
                fields=["delivery", "at"],
                condition=models.Q(status__in=["opened", "clicked", "read"]),
                name="deliveryevent_engagement",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class Attempt(models.Model):
    """One call to a provider for a delivery."""

    class Outcome(models.TextChoices):
        SENT = "sent"
        TRANSIENT = "transient"
        PERMANENT = "permanent"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    provider = models.CharField(max_length=30)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    response_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    # What the provider charges for this attempt, in millionths of the currency of
    # ANALYTICS_COSTS; 0 unless the provider accepted it (an SMS counts its segments).
    cost_micros = models.BigIntegerField(default=0, db_default=0)
    # Folded into the analytics rollup's cost (apps/analytics), as DeliveryEvent.counted.
    counted = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["number"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(counted=False), name="attempt_uncounted")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class DeadLetter(models.Model):
    """A delivery that ran out of attempts or failed permanently: everything needed to replay."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="dead_letters")
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    reason = models.CharField(max_length=200)
    last_error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.channel}: {self.reason}"


def default_max_attempts(channel: str) -> int:
    return int(settings.DELIVERY_MAX_ATTEMPTS.get(channel, 5))


class FanOut(models.Model):
    """A notification sent to a topic's subscribers: the fan-out worker's progress.

    The worker creates deliveries in chunks, each in one transaction that also moves
    `after_recipient` (the last subscriber reached, by recipient id) and `created`: a crash
    loses at most the chunk in flight, which was never committed, and the next run starts
    after the last committed one (no gaps; no duplicates, and delivery_unique_target besides).
    """

    notification = models.OneToOneField(
        Notification, on_delete=models.CASCADE, primary_key=True, related_name="fan_out"
    )
    # A deleted topic stops the fan-out at its next chunk; its key stays for the record.
    topic = models.ForeignKey(
        "topics.Topic", on_delete=models.SET_NULL, null=True, blank=True, related_name="fan_outs"
    )
    topic_key = models.CharField(max_length=100)
    # External ids left out (the actor, say).
    exclude = models.JSONField(default=list, blank=True)
    # Deliveries on the requested channels: subscribers (at the trigger) times channels.
    expected = models.PositiveIntegerField()
    created = models.PositiveIntegerField(default=0)
    after_recipient = models.BigIntegerField(default=0)
    # Where the last committed chunk started: a resumed run publishes that chunk's `queued`
    # deliveries again, since a crash may have cut its publish short after the commit.
    chunk_from = models.BigIntegerField(default=0)
    # The live run's token: each continuation carries it; the resume sweep issues a new one, so
    # a run it presumed dead (only slow) exits at its next step instead of running beside it.
    run_token = models.CharField(max_length=32, default="", blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The resume sweep looks for unfinished fan-outs that stopped moving.
            models.Index(
                fields=["updated_at"],
                condition=models.Q(finished_at__isnull=True),
                name="fanout_unfinished_updated",
            )
        ]

    def __str__(self) -> str:
        return f"fan-out of {self.notification_id} to {self.topic_key}"


class VariantAssignment(models.Model):
    """An A/B test's sticky choice: the label a recipient was given for a template's channel,
    kept so that weights edited during the test move new recipients only."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    label = models.CharField(max_length=20)
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["template", "channel", "recipient"], name="variant_assignment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} for {self.recipient_id}"
