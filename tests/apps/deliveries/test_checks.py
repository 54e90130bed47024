"""System checks on the delivery timing settings."""

from __future__ import annotations

from typing import Any

from apps.deliveries.checks import delivery_timing_check


def test_defaults_pass() -> None:
    assert delivery_timing_check() == []


def test_a_retry_cap_above_the_visibility_timeout_is_an_error(settings: Any) -> None:
    settings.RETRY_CAP_SECONDS = 4000

    assert [m.id for m in delivery_timing_check()] == ["deliveries.E001"]


def test_a_stuck_send_deadline_near_the_provider_timeout_is_a_warning(settings: Any) -> None:
    settings.SEND_STUCK_AFTER_SECONDS = 15

    assert [m.id for m in delivery_timing_check()] == ["deliveries.W001"]
