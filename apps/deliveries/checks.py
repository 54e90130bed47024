"""System checks (`manage.py check`, run at every start) for timing settings that must agree."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register()
def delivery_timing_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Countdowns below the broker's visibility timeout; the stuck-send deadline above the
    provider timeouts (the threads pool cannot kill a send: those timeouts bound it)."""
    problems: list[CheckMessage] = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    longest_countdown = settings.RETRY_CAP_SECONDS + settings.PROVIDER_WAIT_JITTER_SECONDS
    if longest_countdown >= visibility:
        problems.append(
            Error(
                f"RETRY_CAP_SECONDS + PROVIDER_WAIT_JITTER_SECONDS ({longest_countdown:g}) must "
                f"stay below the broker visibility timeout ({visibility}): longer countdowns "
                "are redelivered over and over.",
                id="deliveries.E001",
            )
        )
    # A batch starts no send after SEND_BATCH_SECONDS; the last one is bounded by its timeout.
    send_bound = settings.SEND_BATCH_SECONDS + max(
        settings.PROVIDER_TIMEOUT_SECONDS, settings.SMTP_TIMEOUT_SECONDS
    )
    if 2 * send_bound >= settings.SEND_STUCK_AFTER_SECONDS:
        problems.append(
            Warning(
                f"SEND_STUCK_AFTER_SECONDS ({settings.SEND_STUCK_AFTER_SECONDS}) should be well "
                f"above SEND_BATCH_SECONDS plus the provider timeouts ({send_bound:g} s): the "
                "reconciler could re-queue a send still in flight and cause a duplicate.",
                id="deliveries.W001",
            )
        )
    return problems
