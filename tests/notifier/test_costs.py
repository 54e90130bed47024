"""Prices times units, in millionths: exact decimals, the unit each channel charges for."""

from __future__ import annotations

import pytest

from notifier.costs import cost_micros, cost_units, prices_problems

PRICES = {"email": {"sendgrid": "0.0004"}, "sms": {"twilio": "0.0083"}, "push": {"fcm": "0.00001"}}


def test_units_are_a_message_the_sms_segments_the_devices_or_nothing() -> None:
    assert cost_units("email", body="x" * 5000) == 1
    assert cost_units("sms", body="a" * 160) == 1
    assert cost_units("sms", body="a" * 161) == 2  # GSM-7: 153 a segment once split
    assert cost_units("sms", body="é" * 10 + "ж") == 1  # UCS-2 (ж is not GSM-7): 70 in one
    assert cost_units("sms", body="ж" * 71) == 2  # UCS-2: 67 a segment once split
    assert cost_units("push", devices=3) == 3
    assert cost_units("inapp", body="free") == 0


def test_cost_is_price_times_units_in_micros_rounded_half_up() -> None:
    assert cost_micros(PRICES, channel="sms", provider="twilio", units=3) == 24_900
    assert cost_micros(PRICES, channel="email", provider="sendgrid", units=1) == 400
    assert cost_micros(PRICES, channel="email", provider="smtp", units=1) == 0  # not listed
    assert cost_micros({"push": {"fcm": "0.0000005"}}, channel="push", provider="fcm", units=1) == 1
    assert cost_micros(PRICES, channel="push", provider="fcm", units=0) == 0


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        ({"sms": {"twilio": "cheap"}}, "price for sms/twilio is not a decimal: 'cheap'"),
        ({"sms": {"twilio": "-1"}}, "price for sms/twilio must be >= 0: '-1'"),
        ({"fax": {"x": "1"}}, "unknown channel 'fax'"),
        ({"sms": "0.1"}, "sms: must be a mapping of provider to price"),
        (["sms"], "must be a mapping of channel to {provider: price}"),
    ],
)
def test_a_bad_price_is_named(prices: object, problem: str) -> None:
    assert prices_problems(prices) == [problem]


def test_the_default_prices_are_sound() -> None:
    from django.conf import settings

    assert prices_problems(settings.ANALYTICS_COSTS) == []
