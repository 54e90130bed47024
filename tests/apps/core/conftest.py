"""The hostile-input tests' world: an ops key with one of everything an operation's path names."""

from __future__ import annotations

from typing import Any

import pytest

from apps.recipients.tokens import recipient_token_mint
from tests.factories import (
    ApiKeyFactory,
    DeadLetterFactory,
    DeliveryFactory,
    DeviceFactory,
    InboxMessageFactory,
    NotificationFactory,
    RecipientFactory,
    TemplateFactory,
    TopicFactory,
    WebhookEndpointFactory,
    WebhookMessageFactory,
)


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    key, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    recipient = RecipientFactory(client=key.client, external_id="user-1", name="Ada")
    DeviceFactory(recipient=recipient, token="device-token-old")
    template = TemplateFactory(client=key.client, key="order_shipped")
    notification = NotificationFactory(client=key.client, template=template)
    DeliveryFactory(notification=notification, recipient=recipient, channel="email")
    dead_delivery = DeliveryFactory(
        notification=notification, recipient=recipient, channel="sms", status="dead"
    )
    dead = DeadLetterFactory(delivery=dead_delivery)
    message = InboxMessageFactory(recipient=recipient)
    TopicFactory(client=key.client, key="order_shipped")  # the `key` parameter's topic
    endpoint = WebhookEndpointFactory(client=key.client)
    # A dead webhook message whose event id is the inbox message's `message_id` (one parameter)
    WebhookMessageFactory(endpoint=endpoint, event_id=str(message.pk), state="dead")
    return {
        "service": f"Bearer {raw}",
        "recipient": f"Recipient {recipient_token_mint(recipient=recipient).token}",
        "params": {
            "notification_id": str(notification.id),
            "dead_letter_id": str(dead.pk),
            "message_id": str(message.pk),
            "endpoint_id": str(endpoint.pk),
            "external_id": "user-1",
            "key": "order_shipped",
            "number": "1",
        },
        "dead_letter_id": dead.pk,
    }
