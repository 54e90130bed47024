"""Which provider serves each channel, built once per process from settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.core.mail import get_connection

from apps.inbox.provider import InboxProvider
from notifier.channels import spec
from notifier.providers.base import Provider
from notifier.providers.console import ConsoleProvider
from notifier.providers.fcm import FcmProvider
from notifier.providers.sendgrid import SendGridProvider
from notifier.providers.smtp import SmtpProvider
from notifier.providers.twilio import TwilioProvider


def provider_max_in_flight(name: str) -> int:
    """Calls to this provider a process may have in flight (1: one after another, inline)."""
    return max(1, int(settings.PROVIDER_MAX_IN_FLIGHT.get(name, 1)))


def _sendgrid() -> Provider | None:
    if not (settings.SENDGRID_API_KEY or settings.SENDGRID_API_URL):
        return None
    return SendGridProvider(
        api_key=settings.SENDGRID_API_KEY or "simulator",
        from_email=settings.EMAIL_FROM,
        host=settings.SENDGRID_API_URL,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        connections=provider_max_in_flight("sendgrid"),
    )


def _smtp() -> Provider | None:
    return smtp_provider() if settings.SMTP_HOST else None


def _twilio() -> Provider | None:
    if not (settings.TWILIO_ACCOUNT_SID or settings.TWILIO_API_URL):
        return None
    return TwilioProvider(
        account_sid=settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
        auth_token=settings.TWILIO_AUTH_TOKEN or "simulator",
        from_number=settings.TWILIO_FROM or "+15550000000",
        base_url=settings.TWILIO_API_URL,
        status_callback=settings.TWILIO_STATUS_CALLBACK_URL,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        connections=provider_max_in_flight("twilio"),
    )


def _fcm() -> Provider | None:
    if not (settings.FCM_PROJECT_ID or settings.FCM_API_URL):
        return None
    return FcmProvider(
        project_id=settings.FCM_PROJECT_ID or "notifier-local",
        credentials_file=settings.FCM_CREDENTIALS,
        base_url=settings.FCM_API_URL,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        connections=provider_max_in_flight("fcm"),
    )


# Each provider a channel spec names (notifier/channels.py), or None when not configured.
BUILDERS: dict[str, Callable[[str], Provider | None]] = {
    "sendgrid": lambda _channel: _sendgrid(),
    "smtp": lambda _channel: _smtp(),
    "twilio": lambda _channel: _twilio(),
    "fcm": lambda _channel: _fcm(),
    "inbox": lambda _channel: InboxProvider(),
    "console": ConsoleProvider,
}


def _configured(channel: str) -> tuple[Provider, ...]:
    """The channel's configured providers, in its spec's order of preference."""
    built = (BUILDERS[name](channel) for name in spec(channel).providers)
    return tuple(provider for provider in built if provider is not None)


@cache
def provider_for(channel: str) -> Provider:
    """The configured provider for `channel`; the console provider when none is configured."""
    return _configured(channel)[0]


@cache
def provider_failovers(channel: str) -> tuple[Provider, ...]:
    """Providers that take over `channel` while the primary's breaker is open, in order (the
    console provider never takes over: it sends nothing)."""
    return tuple(p for p in _configured(channel)[1:] if not isinstance(p, ConsoleProvider))


def _smtp_connection() -> Any:
    # An explicit SMTP backend whatever EMAIL_BACKEND says; the timeout bounds a hung server.
    return get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=settings.SMTP_HOST,
        port=settings.SMTP_PORT,
        username=settings.SMTP_USER,
        password=settings.SMTP_PASSWORD,
        use_tls=settings.SMTP_USE_TLS,
        use_ssl=settings.SMTP_USE_SSL,
        timeout=settings.SMTP_TIMEOUT_SECONDS,
        fail_silently=False,
    )


@cache
def smtp_provider() -> SmtpProvider:
    return SmtpProvider(connection_factory=_smtp_connection, from_email=settings.EMAIL_FROM)
