"""The 202 body of a notification request, and the entries for unknown recipients that the
notification's GET lists with its deliveries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.deliveries.models import DeliveryStatus
from notifier.types import Channel

CHANNELS = [c.value for c in Channel]


class DeliverySummarySerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(
        allow_null=True,
        help_text="null for an unknown recipient id (status `skipped`, reason "
        "`unknown_recipient`): there is no delivery row.",
    )
    recipient = serializers.CharField()
    channel = serializers.ChoiceField(choices=CHANNELS)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    reason = serializers.CharField(allow_blank=True)
    not_before = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text='Only with `"send_at": "best_time"`: the time it is `scheduled` until (the '
        "recipient's best time), null when it is sent at once.",
    )
    variant = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='Only with `"send_at": "best_time"`: `best_time` or `immediate` with '
        '`best_time_holdout`, else "".',
    )


class SkippedRecipientSerializer(serializers.Serializer[Any]):
    """A requested recipient that got no delivery (no recipient row to hang one on)."""

    recipient = serializers.CharField(help_text="The external id as given.")
    reason = serializers.CharField(help_text="`unknown_recipient`: the client has no such id.")


# Always null. `maxLength: 0` rather than `enum: [null]` (which drf-spectacular turns into an
# empty enum): a delivery row's UUID never fits, so `oneOf` tells the two kinds of entry apart.
@extend_schema_field(
    {"type": "string", "nullable": True, "maxLength": 0, "description": "Always null: no row."}
)
class NoRowIdField(serializers.Field[Any, Any, Any, Any]):
    def to_representation(self, value: Any) -> None:
        return None


class SkippedDeliverySerializer(serializers.Serializer[Any]):
    """A requested channel of an unknown recipient id: listed with the deliveries, but not a
    delivery row (no id, no attempts; never found by a delivery filter)."""

    id = NoRowIdField()
    recipient = serializers.CharField(help_text="The external id as given.")
    channel = serializers.ChoiceField(choices=CHANNELS)
    status = serializers.CharField(help_text="Always `skipped`.")
    reason = serializers.CharField(help_text="`unknown_recipient`.")


class NotificationAcceptedSerializer(serializers.Serializer[Any]):
    """The 202 body (for more than one known recipient, without `deliveries`; for a topic,
    with `recipients`, `topic` and `expected` instead). `deliveries` ends with one `skipped`
    entry (id null) per requested channel of each unknown id."""

    id = serializers.UUIDField()
    status = serializers.CharField(help_text="Always `accepted`.")
    deliveries = DeliverySummarySerializer(many=True, required=False)
    skipped = SkippedRecipientSerializer(
        many=True,
        required=False,
        help_text="Only when some requested recipient ids are unknown (and `strict` is not set).",
    )
    recipients = serializers.CharField(
        required=False, help_text="`fan-out` for a topic: a worker creates the deliveries."
    )
    topic = serializers.CharField(required=False)
    send_at = serializers.CharField(
        required=False, help_text='`best_time` when the request said `"send_at": "best_time"`.'
    )
    expected = serializers.IntegerField(
        required=False, help_text="Deliveries to create: subscribers times channels."
    )
