from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.core.fields import CategoryField, DigestField, StrictBooleanField, StrictCharField
from apps.deliveries.api.accepted import (
    CHANNELS,
    SkippedDeliverySerializer,
    SkippedRecipientSerializer,
)
from apps.deliveries.api.send_time_fields import (
    BEST_TIME,
    HoldoutField,
    NotificationSendAtField,
    SendAtField,
    send_time_errors,
)
from apps.deliveries.api.workflow_fields import (
    ESCALATION_SCHEMA,
    THROTTLE_SCHEMA,
    EscalationField,
    ThrottleField,
)
from apps.deliveries.models import (
    Attempt,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Digest,
    FanOut,
    Notification,
)
from apps.deliveries.selectors import notification_skipped_deliveries
from apps.recipients.api.refs import RecipientRefField, errors_named, recipients_split
from apps.topics.api.serializers import TopicKeyField
from notifier.types import Priority

MAX_RECIPIENTS = 1000
PRIORITIES = [p.value for p in Priority]


class NotificationCreateSerializer(serializers.Serializer[Any]):
    recipient = RecipientRefField(required=False)
    recipients = serializers.ListField(
        child=RecipientRefField(),
        required=False,
        min_length=1,
        max_length=MAX_RECIPIENTS,
    )
    template = serializers.SlugField(max_length=100)
    variables = serializers.DictField(required=False, default=dict)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANNELS), required=False, min_length=1
    )
    priority = serializers.ChoiceField(choices=PRIORITIES, required=False)
    category = CategoryField(
        required=False, help_text="Letters, digits and `_ . : -`, 1 to 50; default: the template's."
    )
    send_at = SendAtField(required=False)
    best_time_holdout = HoldoutField(required=False)
    fallback = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANNELS), required=False, default=list
    )
    idempotency_key = serializers.CharField(max_length=255, required=False)
    strict = StrictBooleanField(
        required=False,
        default=False,
        help_text=(
            "When true, any unknown recipient id rejects the request (400). Otherwise the "
            "known ones are accepted and each unknown one is reported in `skipped`."
        ),
    )
    topic = TopicKeyField(
        required=False,
        help_text=(
            "Instead of recipients: every subscriber of this topic. A worker creates the "
            "deliveries and applies each subscriber's preferences and the throttle, digest and "
            "escalation (the template's, or this request's) as for listed recipients."
        ),
    )
    exclude = serializers.ListField(
        child=StrictCharField(max_length=200),  # a number is a 400, not a str()
        required=False,
        max_length=MAX_RECIPIENTS,
        help_text="With `topic`: subscribers left out (the actor), by external id.",
    )
    throttle = ThrottleField(required=False)
    escalation = EscalationField(required=False)
    digest = DigestField(
        required=False,
        help_text=(
            "Batch into a digest: `{window, key, max_items}` overrides the template's "
            "declaration, `false` sends this one on its own. `critical` is never digested, nor "
            "a notification with `escalation` (an object with `escalation` is a 400) or a "
            "`send_at` later than now. With `topic`, each subscriber's deliveries join that "
            "subscriber's own windows."
        ),
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Report the recipient rule together with field errors, so one answer names them all.
        errors: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = (
                dict(exc.detail)
                if isinstance(exc.detail, dict)
                else {"non_field_errors": exc.detail}
            )
        if isinstance(data, Mapping):
            targets = [name for name in ("recipient", "recipients", "topic") if name in data]
            if len(targets) != 1:
                errors.setdefault(
                    targets[0] if targets else "recipient",
                    ["give exactly one of 'recipient', 'recipients' or 'topic'"],
                )
            if "exclude" in data and "topic" not in data:
                errors.setdefault("exclude", ["only with 'topic'"])
            for name, messages in send_time_errors(attrs, data).items():
                errors.setdefault(name, messages)
        if errors:
            raise serializers.ValidationError(errors_named(errors))
        attrs["best_time"] = attrs.get("send_at") == BEST_TIME
        if attrs["best_time"]:
            attrs["send_at"] = None
        if "topic" in attrs:
            attrs["recipients"], attrs["profiles"] = [], {}
            return attrs
        single = "recipient" in attrs
        refs = [attrs.pop("recipient")] if single else attrs["recipients"]
        name = "recipient" if single else "recipients"
        attrs["recipients"], attrs["profiles"] = recipients_split(refs, name=name)
        return attrs


class FanOutSerializer(serializers.ModelSerializer[FanOut]):
    """A topic notification's fan-out progress."""

    topic = serializers.CharField(source="topic_key")
    done = serializers.SerializerMethodField()

    class Meta:
        model = FanOut
        fields = ["topic", "exclude", "expected", "created", "done", "finished_at"]

    def get_done(self, fan_out: FanOut) -> bool:
        return fan_out.finished_at is not None


class NotificationFilterSerializer(serializers.Serializer[Any]):
    """Query parameters of the notification list."""

    recipient = serializers.CharField(
        max_length=200, required=False, help_text="A recipient's external id."
    )
    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices, required=False, help_text="A delivery status."
    )
    channel = serializers.ChoiceField(choices=CHANNELS, required=False)


class EventSerializer(serializers.ModelSerializer[Any]):
    class Meta:
        model = DeliveryEvent
        fields = ["status", "at", "detail"]


class AttemptSerializer(serializers.ModelSerializer[Any]):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "provider",
            "started_at",
            "finished_at",
            "outcome",
            "response_code",
            "latency_ms",
            "error",
        ]


class DigestSummarySerializer(serializers.ModelSerializer[Any]):
    """The digest window a `digested` delivery joined."""

    delivery = serializers.UUIDField(
        source="delivery_id", allow_null=True, help_text="The digest's own delivery, once sent."
    )

    class Meta:
        model = Digest
        fields = ["id", "key", "closes_at", "closed_at", "outcome", "item_count", "delivery"]


class DeliverySerializer(serializers.ModelSerializer[Any]):
    recipient = serializers.CharField(source="recipient.external_id")
    digest = DigestSummarySerializer(
        allow_null=True, help_text="For a `digested` delivery: the digest window it joined."
    )
    timeline = EventSerializer(source="events", many=True)
    attempt_log = AttemptSerializer(source="attempt_rows", many=True)
    variant = serializers.CharField(
        help_text="The A/B label its copy was rendered with, set when sent (docs/analytics.md); "
        '"" outside a test.'
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "recipient",
            "channel",
            "priority",
            "status",
            "reason",
            "attempts",
            "next_attempt_at",
            "not_before",
            "provider",
            "provider_message_id",
            "variant",
            "is_fallback",
            "escalation_step",
            "digest",
            "created_at",
            "sent_at",
            "timeline",
            "attempt_log",
        ]


class NotificationSerializer(serializers.ModelSerializer[Any]):
    template = serializers.CharField(source="template.key")
    channels = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS))
    fallback = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS))
    template_version = serializers.IntegerField(source="template_version.number")
    deliveries = serializers.SerializerMethodField()
    skipped = SkippedRecipientSerializer(many=True)
    fan_out = serializers.SerializerMethodField()
    throttle = serializers.SerializerMethodField()
    escalation = serializers.SerializerMethodField()
    send_at = NotificationSendAtField(source="*", read_only=True)
    delivery_counts = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Only when `deliveries_truncated`: every delivery counted by status.",
    )
    deliveries_total = serializers.IntegerField(
        required=False, help_text="Only when `deliveries_truncated`: every delivery."
    )
    deliveries_truncated = serializers.BooleanField(
        required=False,
        help_text="Present (true) only for a topic's notification (`fan_out`) with more than "
        "100 deliveries, when `deliveries` holds the first 100: read them all from "
        "GET /api/v1/notifications/{id}/deliveries. A notification to listed recipients "
        "always lists every delivery.",
    )

    class Meta:
        model = Notification
        fields = [
            "id",
            "template",
            "template_version",
            "priority",
            "category",
            "channels",
            "fallback",
            "send_at",
            "best_time_holdout",
            "idempotency_key",
            "recipient_count",
            "created_at",
            "fan_out",
            "throttle",
            "escalation",
            "deliveries",
            "skipped",
            "delivery_counts",
            "deliveries_total",
            "deliveries_truncated",
        ]

    def to_representation(self, instance: Notification) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if not data.get("deliveries_truncated"):  # every delivery listed: the usual shape
            for name in ("delivery_counts", "deliveries_total", "deliveries_truncated"):
                data.pop(name, None)
        return data

    @extend_schema_field(
        PolymorphicProxySerializer(
            component_name="NotificationDelivery",
            serializers=[DeliverySerializer, SkippedDeliverySerializer],
            resource_type_field_name=None,
            many=True,
        )
    )
    def get_deliveries(self, notification: Notification) -> list[Any]:
        """Every delivery row (a topic's notification: the first 100, see
        `deliveries_truncated`), then one `skipped` entry per channel of each unknown id."""
        rows = DeliverySerializer(notification.shown_deliveries, many=True).data  # type: ignore[attr-defined]
        return [*rows, *notification_skipped_deliveries(notification=notification)]

    @extend_schema_field(FanOutSerializer(allow_null=True))
    def get_fan_out(self, notification: Notification) -> dict[str, Any] | None:
        """A topic notification's progress (`expected`, `created`); null for the others."""
        try:
            fan_out = notification.fan_out
        except FanOut.DoesNotExist:
            return None
        return dict(FanOutSerializer(fan_out).data)

    @extend_schema_field({**THROTTLE_SCHEMA, "nullable": True})
    def get_throttle(self, notification: Notification) -> dict[str, Any] | None:
        return notification.throttle

    @extend_schema_field(ESCALATION_SCHEMA)
    def get_escalation(self, notification: Notification) -> list[dict[str, Any]]:
        return list(notification.escalation or [])


class NotificationListItemSerializer(serializers.ModelSerializer[Any]):
    """A notification in a list: its deliveries counted by status, not listed."""

    template = serializers.CharField(source="template.key")
    template_version = serializers.IntegerField(source="template_version.number")
    channels = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS))
    fallback = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS))
    deliveries_by_status = serializers.SerializerMethodField()
    send_at = NotificationSendAtField(source="*", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "template",
            "template_version",
            "priority",
            "category",
            "channels",
            "fallback",
            "send_at",
            "best_time_holdout",
            "idempotency_key",
            "recipient_count",
            "created_at",
            "deliveries_by_status",
        ]

    def get_deliveries_by_status(self, notification: Notification) -> dict[str, int]:
        counts: dict[str, dict[str, int]] = self.context.get("status_counts", {})
        return counts.get(str(notification.id), {})
