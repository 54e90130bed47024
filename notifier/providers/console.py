"""Development provider: logs what would be sent (addresses masked)."""

from __future__ import annotations

import logging
import uuid

from notifier.masking import mask_address
from notifier.providers.base import OutboundMessage, SendResult

logger = logging.getLogger("notifier.console")


class ConsoleProvider:
    def __init__(self, channel: str) -> None:
        self.name = f"console-{channel}"

    def send(self, message: OutboundMessage) -> SendResult:
        logger.info(
            "console send",
            extra={
                "delivery_id": message.delivery_id,
                "channel": message.channel,
                "to": mask_address(message.to),
                "subject": message.subject or message.title,
                "body": message.body,
            },
        )
        return SendResult(provider_message_id=f"console-{uuid.uuid4().hex}")
