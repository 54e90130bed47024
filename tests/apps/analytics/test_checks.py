"""`manage.py check` refuses a price that is not a non-negative decimal."""

from __future__ import annotations

from typing import Any

from apps.analytics.checks import analytics_costs_check


def test_a_bad_price_is_a_check_error(settings: Any) -> None:
    settings.ANALYTICS_COSTS = {"sms": {"twilio": "0.0083"}, "email": {"sendgrid": "1,5"}}

    errors = analytics_costs_check()

    assert [(e.id, e.msg) for e in errors] == [
        ("analytics.E001", "ANALYTICS_COSTS: price for email/sendgrid is not a decimal: '1,5'")
    ]


def test_the_defaults_pass(settings: Any) -> None:
    assert analytics_costs_check() == []
