from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.fields import StrictBooleanField, StrictCharField
from apps.webhooks.addresses import URL_MAX
from apps.webhooks.models import SUBSCRIBABLE, MessageStatus, WebhookEndpoint, WebhookMessage
from apps.webhooks.schema import WebhookEventField

EVENTS_HELP = "Event types to send: " + ", ".join(f"`{t}`" for t in SUBSCRIBABLE) + "."


class EventsField(serializers.ListField):
    child = serializers.ChoiceField(choices=SUBSCRIBABLE)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            min_length=1, max_length=len(SUBSCRIBABLE) * 2, help_text=EVENTS_HELP, **kwargs
        )


class EndpointCreateSerializer(serializers.Serializer[Any]):
    url = StrictCharField(
        max_length=URL_MAX, help_text="https:// (http and private addresses in development only)."
    )
    events = EventsField()
    description = StrictCharField(max_length=500, allow_blank=True, required=False, default="")
    include_content = StrictBooleanField(
        required=False,
        default=False,
        help_text="Also send unmasked contact addresses and the notification's variables.",
    )


class EndpointUpdateSerializer(serializers.Serializer[Any]):
    url = StrictCharField(max_length=URL_MAX, required=False)
    events = EventsField(required=False)
    description = StrictCharField(max_length=500, allow_blank=True, required=False)
    include_content = StrictBooleanField(required=False)
    enabled = StrictBooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "include_content",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_...`): shown only now, keep it."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[WebhookMessage]):
    id = serializers.CharField(source="event_id", help_text="The event id (`webhook-id`).")
    status = serializers.ChoiceField(source="state", choices=MessageStatus.choices)
    payload = WebhookEventField(help_text="The body sent (the event).")

    class Meta:
        model = WebhookMessage
        fields = [
            "id",
            "type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "delivered_at",
            "replayed_at",
            "replayed_by",
            "payload",
        ]
        read_only_fields = fields


class MessageFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
