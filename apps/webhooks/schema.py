"""The events as OpenAPI components: one `<Name>Event` per type, `{"id", "type", "created_at",
"data"}`, and `WebhookEvent`, their union discriminated by `type` (the `payload` of a message in
`GET /api/v1/webhook-endpoints/{id}/messages`). docs/webhooks.md shows each with an example."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.deliveries.models import CHANNEL_CHOICES
from apps.deliveries.signals import ANNOUNCED
from apps.webhooks.models import EventType


class DeliveryEventDataSerializer(serializers.Serializer[Any]):
    delivery_id = serializers.UUIDField()
    notification_id = serializers.UUIDField()
    recipient = serializers.CharField(help_text="The recipient's external id.")
    channel = serializers.ChoiceField(choices=CHANNEL_CHOICES)
    status = serializers.ChoiceField(choices=sorted(ANNOUNCED))
    reason = serializers.CharField(
        allow_blank=True, help_text="Why (a skip, a failure); addresses masked unless opted in."
    )
    provider = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    contact = serializers.CharField(
        allow_blank=True,
        help_text="The address used (email, phone): masked unless the endpoint opted in "
        "(`include_content`); empty for push and in-app.",
    )
    variables = serializers.DictField(
        required=False, help_text="The notification's variables: only with `include_content`."
    )


class NotificationCancelledDataSerializer(serializers.Serializer[Any]):
    notification_id = serializers.UUIDField()
    cancelled_deliveries = serializers.ListField(child=serializers.UUIDField())


# Built with type(): a field named `source` would shadow Field.source in a class body (for mypy).
RecipientEventDataSerializer = type(
    "RecipientEventDataSerializer",
    (serializers.Serializer,),
    {
        "recipient": serializers.CharField(help_text="The recipient's external id."),
        "category": serializers.CharField(allow_blank=True),
        "channel": serializers.CharField(allow_blank=True),
        "source": serializers.CharField(help_text="`one-click`, `link` or `preferences`."),
    },
)


class PingDataSerializer(serializers.Serializer[Any]):
    endpoint_id = serializers.UUIDField()
    message = serializers.CharField()


DATA = {
    "delivery": DeliveryEventDataSerializer,
    "notification": NotificationCancelledDataSerializer,
    "recipient": RecipientEventDataSerializer,
    "ping": PingDataSerializer,
}


def _event_serializer(type_: str) -> type[serializers.Serializer[Any]]:
    name = "".join(part.title() for part in type_.replace(".", "_").split("_")) + "Event"
    attrs = {
        "__doc__": f"The `{type_}` event (also the body POSTed to the endpoint).",
        "id": serializers.CharField(help_text="`msg_...`: the same across retries and replays."),
        "type": serializers.ChoiceField(choices=[type_]),
        "created_at": serializers.DateTimeField(),
        "data": DATA[type_.split(".")[0]](),
    }
    return type(f"{name}Serializer", (serializers.Serializer,), attrs)


EVENT_SERIALIZERS: dict[str, Any] = {t.value: _event_serializer(t.value) for t in EventType}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="WebhookEvent",
        serializers=EVENT_SERIALIZERS,
        resource_type_field_name="type",
    )
)
class WebhookEventField(serializers.JSONField):
    """A stored event body, documented as the union of the event components."""
