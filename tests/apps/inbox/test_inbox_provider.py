"""The inapp "provider": stores once per delivery, pushes through the channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings

from apps.deliveries.models import Delivery
from apps.deliveries.providers import provider_for
from apps.inbox.models import InboxMessage
from apps.inbox.provider import InboxProvider
from apps.inbox.realtime import inbox_group
from notifier.errors import TransientFailure
from notifier.providers.base import OutboundMessage
from tests.factories import DeliveryFactory

pytestmark = [pytest.mark.django_db(transaction=True)]


def outbound(delivery: Delivery) -> OutboundMessage:
    """What compose.delivery_message builds: the recipient travels with the message."""
    return OutboundMessage(
        delivery_id=str(delivery.id),
        recipient_id=delivery.recipient_id,
        channel="inapp",
        to="user-1",
        title="Shipped",
        body="Order A-1",
        data={"notification_id": "n-1"},
    )


def test_inapp_channel_is_served_by_the_inbox() -> None:
    assert isinstance(provider_for("inapp"), InboxProvider)


def test_retried_send_stores_one_message_and_pushes_it_each_time(clean_redis: object) -> None:
    delivery = DeliveryFactory(channel="inapp")
    layer = get_channel_layer()
    listener = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(inbox_group(delivery.recipient_id), listener)

    first = InboxProvider().send(outbound(delivery))
    second = InboxProvider().send(outbound(delivery))
    pushed = [async_to_sync(layer.receive)(listener) for _ in range(2)]

    message = InboxMessage.objects.get()
    assert first.provider_message_id == second.provider_message_id == f"inbox-{message.id}"
    assert (message.recipient_id, message.delivery_id) == (delivery.recipient_id, delivery.id)
    assert (message.title, message.body, message.data) == (
        "Shipped",
        "Order A-1",
        {"notification_id": "n-1"},
    )
    assert [p["message"]["id"] for p in pushed] == [message.id, message.id]


def test_unreachable_channel_layer_is_a_transient_failure() -> None:
    delivery = DeliveryFactory(channel="inapp")
    unreachable = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},
        }
    }

    with override_settings(CHANNEL_LAYERS=unreachable), pytest.raises(TransientFailure):
        InboxProvider().send(outbound(delivery))

    assert InboxMessage.objects.filter(delivery=delivery).count() == 1  # kept for the retry
