"""System checks: production refuses webhooks to private addresses (SSRF), and the retry
schedule must make sense."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security)
def webhooks_private_addresses_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """WEBHOOKS_ALLOW_PRIVATE is an error where the settings refuse unsafe starts (production):
    endpoints could reach the service's own network (SSRF). Beside BENCH_ENDPOINTS (`make
    bench`, already unfit for production) a warning."""
    if not getattr(settings, "REFUSE_UNSAFE_SETTINGS", False):
        return []
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        return []
    if settings.BENCH_ENDPOINTS:  # `make bench` only: its receiver listens on 127.0.0.1
        return [
            Warning(
                "WEBHOOKS_ALLOW_PRIVATE is on (with BENCH_ENDPOINTS): webhooks may reach "
                "loopback and private addresses.",
                hint="Only `make bench --webhook-receiver-sleep` needs it.",
                id="notifier.W003",
            )
        ]
    return [
        Error(
            "WEBHOOKS_ALLOW_PRIVATE is on: webhook endpoints could be http:// and reach "
            "loopback, private and cloud-metadata addresses (SSRF).",
            hint="Unset WEBHOOKS_ALLOW_PRIVATE: it is for development and tests only.",
            id="notifier.E005",
        )
    ]


@register()
def webhooks_schedule_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if not schedule or any(float(s) <= 0 for s in schedule):
        return [
            Error(
                f"WEBHOOKS_RETRY_SCHEDULE ({schedule}) must list positive delays (seconds).",
                id="webhooks.E001",
            )
        ]
    return []
