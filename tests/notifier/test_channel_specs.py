"""Channels as data: where a message goes, from the spec alone (no database)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from notifier.channels import spec

CAROL = SimpleNamespace(email="Carol@Example.net", phone="+14155550123", external_id="carol")


@pytest.mark.parametrize(
    ("channel", "contact", "suppressible"),
    [
        ("email", "Carol@Example.net", True),
        ("sms", "+14155550123", True),
        ("push", "carol", False),
        ("inapp", "carol", False),
    ],
)
def test_each_channel_says_where_a_message_goes(
    channel: str, contact: str, suppressible: bool
) -> None:
    assert spec(channel).contact(CAROL) == contact
    assert spec(channel).suppressible is suppressible


def test_email_addresses_compare_case_insensitively() -> None:
    assert spec("email").normalise(" Carol@Example.net ") == "carol@example.net"
    assert spec("sms").normalise(" +14155550123 ") == "+14155550123"


def test_an_unknown_channel_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="fax"):
        spec("fax")
