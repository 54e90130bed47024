"""Skip and defer reasons are codes; rows store their messages, and the code comes back."""

from __future__ import annotations

import pytest

from notifier.channels import CHANNELS
from notifier.routing import Reason


@pytest.mark.parametrize("code", list(Reason))
@pytest.mark.parametrize("channel", list(CHANNELS))
def test_every_message_names_its_code(code: Reason, channel: str) -> None:
    message = code.message(channel=channel, category="order updates")
    assert Reason.of(message) is code


def test_only_no_address_and_suppressed_are_unreachable() -> None:
    assert {code for code in Reason if code.unreachable} == {
        Reason.NO_ADDRESS,
        Reason.SUPPRESSED,
    }


@pytest.mark.parametrize(
    "text", ["", "cancelled by client", "twilio undelivered", "fcm token unregistered"]
)
def test_other_reasons_have_no_code(text: str) -> None:
    assert Reason.of(text) is None
