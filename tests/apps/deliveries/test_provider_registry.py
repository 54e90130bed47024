"""The provider registry: real providers when configured, the console provider otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.deliveries.providers import provider_failovers, provider_for


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    provider_for.cache_clear()
    provider_failovers.cache_clear()
    yield
    provider_for.cache_clear()
    provider_failovers.cache_clear()


@pytest.fixture
def unconfigured(settings: Any, fresh_registry: None) -> Any:
    for name in [
        "SENDGRID_API_KEY",
        "SENDGRID_API_URL",
        "SMTP_HOST",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_API_URL",
        "FCM_PROJECT_ID",
        "FCM_API_URL",
    ]:
        setattr(settings, name, "")
    return settings


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_console_when_nothing_is_configured(unconfigured: Any, channel: str) -> None:
    assert provider_for(channel).name == f"console-{channel}"


def test_inapp_is_always_the_inbox(unconfigured: Any) -> None:
    # The inbox needs no external provider: it stores the message and pushes it over Redis.
    assert provider_for("inapp").name == "inbox"


def test_twilio_and_fcm_when_their_urls_are_set(unconfigured: Any) -> None:
    unconfigured.TWILIO_API_URL = "http://127.0.0.1:9"
    unconfigured.FCM_API_URL = "http://127.0.0.1:9"

    assert provider_for("sms").name == "twilio"
    assert provider_for("push").name == "fcm"
    assert provider_for("push").url == (  # type: ignore[attr-defined]
        "http://127.0.0.1:9/v1/projects/notifier-local/messages:send"
    )


def test_twilio_and_fcm_when_credentials_are_set(unconfigured: Any) -> None:
    unconfigured.TWILIO_ACCOUNT_SID = "AC" + "3" * 32
    unconfigured.TWILIO_AUTH_TOKEN = "token"
    unconfigured.FCM_PROJECT_ID = "my-project"

    assert provider_for("sms").name == "twilio"
    assert provider_for("push").url == (  # type: ignore[attr-defined]
        "https://fcm.googleapis.com/v1/projects/my-project/messages:send"
    )
