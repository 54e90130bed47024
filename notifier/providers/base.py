"""What every provider adapter takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message ready for a provider. `to` is an address, a number or a device token."""

    delivery_id: str
    channel: str
    to: str
    body: str
    subject: str = ""
    html: str = ""
    title: str = ""
    platform: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # Our recipient's id, for the providers that are ours (the in-app inbox stores by it).
    recipient_id: int | None = None
    # Extra mail headers (email only), e.g. RFC 8058's List-Unsubscribe and List-Unsubscribe-Post.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status_code: int | None = None


class Provider(Protocol):
    name: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand the message to the provider, or raise TransientFailure / PermanentFailure."""
        ...
