"""Error reporting through sentry-sdk, when SENTRY_DSN is set: Django, Celery and Redis
integrations, and no personal data (masked before anything leaves the process)."""

from __future__ import annotations

import os
from typing import Any

from notifier.masking import is_secret_name, mask_text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: "***" if is_secret_name(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def sentry_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Mask every email address, phone number and credential anywhere in an event (messages,
    exception values, breadcrumbs, local variables, the request's query string and headers)
    before it leaves the process: sentry-sdk's own scrubber knows header names, not our
    `?token=` query strings or API keys."""
    scrubbed: dict[str, Any] = _scrub(event)
    return scrubbed


def sentry_init(dsn: str, *, environment: str, release: str | None = None) -> bool:
    """Report errors to Sentry with the Django, Celery and Redis integrations; no PII."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.redis import RedisIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        send_default_pii=False,
        before_send=sentry_before_send,  # type: ignore[arg-type]
        before_send_transaction=sentry_before_send,  # type: ignore[arg-type]
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
    )
    return True
