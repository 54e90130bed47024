"""Fixtures shared by the delivery tests of provider webhooks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.webhooks import TWILIO_TOKEN


@pytest.fixture
def twilio_settings(settings: Any) -> None:
    """Twilio's auth token and the public status-callback URL its reports are signed for."""
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_STATUS_CALLBACK_URL = "https://notifier.example/webhooks/twilio/status"
