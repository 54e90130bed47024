"""ANALYTICS_COSTS is parsed and checked when the settings load (config/settings/analytics.py):
every bad shape stops the start with ImproperlyConfigured naming it, instead of failing sends
after the provider accepted them."""

from __future__ import annotations

import importlib
import os
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import analytics as analytics_settings


def _load(value: str) -> object:
    """ANALYTICS_COSTS as the settings module reads it from `value` in the environment (the
    module is loaded again afterwards from the environment as it was)."""
    before = os.environ.get("ANALYTICS_COSTS")
    os.environ["ANALYTICS_COSTS"] = value
    try:
        return importlib.reload(analytics_settings).ANALYTICS_COSTS
    finally:
        if before is None:
            del os.environ["ANALYTICS_COSTS"]
        else:
            os.environ["ANALYTICS_COSTS"] = before
        importlib.reload(analytics_settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"sms": "0.01"}', "ANALYTICS_COSTS: sms: must be a mapping of provider to price"),
        (
            '{"sms": {"twilio": "abc"}}',
            "ANALYTICS_COSTS: price for sms/twilio is not a decimal: 'abc'",
        ),
        (
            '{"sms": {"twilio": "1e13"}}',
            "ANALYTICS_COSTS: price for sms/twilio must be <= 1000 a unit: '1e13'",
        ),
        ('{"sms": {"twilio": "-1"}}', "ANALYTICS_COSTS: price for sms/twilio must be >= 0: '-1'"),
        ('{"fax": {"x": "1"}}', "ANALYTICS_COSTS: unknown channel 'fax'"),
        ('["sms"]', "ANALYTICS_COSTS: must be a mapping of channel to {provider: price}"),
    ],
)
def test_a_bad_price_stops_the_settings_load_naming_it(value: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        _load(value)
    assert str(raised.value) == message


def test_json_that_does_not_parse_stops_the_settings_load() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^ANALYTICS_COSTS: Expecting property name"):
        _load("{sms: 0.01}")


def test_good_prices_are_parsed_into_decimals_once() -> None:
    assert _load('{"sms": {"twilio": "0.0083"}, "email": {"sendgrid": 0.0004}}') == {
        "sms": {"twilio": Decimal("0.0083")},
        "email": {"sendgrid": Decimal("0.0004")},
    }


def test_the_defaults_load_as_decimals() -> None:
    from django.conf import settings

    assert settings.ANALYTICS_COSTS["sms"] == {"twilio": Decimal("0.0083")}
    assert settings.ANALYTICS_FOLD_BUDGET_SECONDS == 2.0
