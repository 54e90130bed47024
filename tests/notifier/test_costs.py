"""Prices times units, in millionths: exact decimals, the unit each channel charges for."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from notifier.costs import (
    MAX_COST_MICROS,
    cost_micros,
    cost_units,
    prices_parse,
    prices_problems,
    unit_price,
)

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
        ({"sms": {"twilio": "abc"}}, "price for sms/twilio is not a decimal: 'abc'"),
        ({"sms": {"twilio": "1e13"}}, "price for sms/twilio must be <= 1000 a unit: '1e13'"),
        ({"sms": {"twilio": "1000.01"}}, "price for sms/twilio must be <= 1000 a unit: '1000.01'"),
        ({"sms": {"twilio": "NaN"}}, "price for sms/twilio must be >= 0: 'NaN'"),
        ({"sms": {"twilio": None}}, "price for sms/twilio is not a decimal: None"),
        ({"sms": {"twilio": True}}, "price for sms/twilio is not a decimal: True"),
        ({"sms": {"twilio": ["1"]}}, "price for sms/twilio is not a decimal: ['1']"),
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


def test_prices_parse_once_into_decimals_up_to_1000_a_unit() -> None:
    parsed = prices_parse({"sms": {"twilio": "0.0083", "other": 1000}, "email": {"smtp": 0.5}})

    assert parsed == {
        "sms": {"twilio": Decimal("0.0083"), "other": Decimal(1000)},
        "email": {"smtp": Decimal("0.5")},
    }
    assert cost_micros(parsed, channel="sms", provider="twilio", units=2) == 16_600


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"sms": "0.01"}, "sms: must be a mapping of provider to price"),
        ({"sms": {"twilio": "abc"}}, "price for sms/twilio is not a decimal: 'abc'"),
        ({"sms": {"twilio": "1e13"}}, "price for sms/twilio must be <= 1000 a unit: '1e13'"),
        (
            {"fax": {"x": "1"}, "sms": {"twilio": "-2"}},
            "unknown channel 'fax'; price for sms/twilio must be >= 0: '-2'",
        ),
    ],
)
def test_prices_parse_refuses_every_bad_shape_naming_it(prices: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        prices_parse(prices)
    assert str(raised.value) == message


def test_a_channel_entry_that_is_no_mapping_is_a_value_error_not_an_attribute_error() -> None:
    with pytest.raises(ValueError, match="sms: must be a mapping of provider to price"):
        unit_price({"sms": "0.01"}, channel="sms", provider="twilio")  # type: ignore[dict-item]


def test_one_attempts_cost_is_capped_far_inside_bigint() -> None:
    prices = {"push": {"fcm": Decimal(1000)}}

    assert cost_micros(prices, channel="push", provider="fcm", units=1000) == 10**12
    assert cost_micros(prices, channel="push", provider="fcm", units=10**9) == MAX_COST_MICROS
    assert MAX_COST_MICROS == 10**12
    # The bypassed check (a Decimal set straight into settings) is still refused, not priced.
    with pytest.raises(ValueError, match="must be <= 1000"):
        cost_micros({"sms": {"twilio": Decimal("1e13")}}, channel="sms", provider="twilio", units=1)
