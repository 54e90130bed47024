"""Channels as data: what each channel needs from a recipient and how it is sent.

The one place that knows a channel by name (besides the provider adapters): everything else asks
`spec(channel)` and reads its fields, so a new channel is one entry here plus its providers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from notifier.types import Channel

__all__ = ["CHANNELS", "Channel", "ChannelSpec", "CostUnit", "Reach", "spec"]


class Reach(StrEnum):
    """How a recipient is reached on a channel."""

    PROFILE = "profile"  # an address in a field of the recipient's profile (email, phone)
    DEVICE = "device"  # each of the recipient's active devices: one send per device token
    INBOX = "inbox"  # the recipient's own in-app inbox: reachable while not erased


def _email(address: str) -> str:
    return address.strip().lower()


def _verbatim(address: str) -> str:
    return address.strip()


class CostUnit(StrEnum):
    """What a provider charges for on a channel (notifier/costs.py counts them)."""

    MESSAGE = "message"  # each message accepted (an email)
    SEGMENT = "segment"  # each SMS segment of the rendered body (notifier/sms_segments.py)
    DEVICE = "device"  # each device the message was accepted for (push)
    FREE = "free"  # nothing (the in-app inbox is ours)


@dataclass(frozen=True)
class ChannelSpec:
    channel: Channel
    reach: Reach
    # The recipient field holding the address (Reach.PROFILE only): also what a suppression
    # of this channel applies to.
    address_field: str = ""
    # The form addresses are compared in (suppressions): email case-insensitively.
    normalise: Callable[[str], str] = _verbatim
    # Whether the template's HTML part is rendered and sent.
    html: bool = False
    # Whether the text may be large (email's render limit) or stays small.
    large: bool = False
    # Whether a message carries mail headers, RFC 8058's List-Unsubscribe among them.
    mail_headers: bool = False
    # Provider names in order of preference: the first one configured is the primary, the
    # configured ones after it take over while its breaker is open; `console` when none is.
    providers: tuple[str, ...] = ("console",)
    # What the providers charge per (ANALYTICS_COSTS prices one unit).
    cost_unit: CostUnit = CostUnit.MESSAGE

    def contact(self, recipient: object) -> str:
        """Where a message on this channel goes for `recipient` (any object with the profile's
        fields): the profile's address as given, else the recipient's external id (push goes to
        each device token instead, the inbox to the recipient)."""
        field = self.address_field or "external_id"
        return str(getattr(recipient, field))

    @property
    def per_device(self) -> bool:
        """One send per active device, rolled up into the one delivery (push)."""
        return self.reach is Reach.DEVICE

    @property
    def suppressible(self) -> bool:
        """Whether an address of this channel can be put on a suppression list."""
        return bool(self.address_field)


CHANNELS: dict[Channel, ChannelSpec] = {
    Channel.EMAIL: ChannelSpec(
        Channel.EMAIL,
        Reach.PROFILE,
        address_field="email",
        normalise=_email,
        html=True,
        large=True,
        mail_headers=True,
        providers=("sendgrid", "smtp", "console"),
    ),
    Channel.SMS: ChannelSpec(
        Channel.SMS,
        Reach.PROFILE,
        address_field="phone",
        providers=("twilio", "console"),
        cost_unit=CostUnit.SEGMENT,
    ),
    Channel.PUSH: ChannelSpec(
        Channel.PUSH, Reach.DEVICE, providers=("fcm", "console"), cost_unit=CostUnit.DEVICE
    ),
    Channel.INAPP: ChannelSpec(
        Channel.INAPP, Reach.INBOX, providers=("inbox",), cost_unit=CostUnit.FREE
    ),
}


def spec(channel: str) -> ChannelSpec:
    """The spec of `channel` (a `Channel` or its value); ValueError for an unknown one."""
    return CHANNELS[Channel(channel)]
