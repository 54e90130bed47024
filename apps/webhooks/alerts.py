"""An endpoint that has failed every attempt for WEBHOOKS_DISABLE_AFTER_SECONDS is disabled: its
messages stop (they become dead letters, replayable once it is fixed), its client's operators
get an email (templates/email/webhook_endpoint_disabled.html, django-templated-mail: top-level
blocks only, no {% extends %}), and the admin shows a notice until someone re-enables it."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from templated_mail.mail import BaseEmailMessage

from apps.webhooks.models import WebhookAttempt, WebhookEndpoint
from apps.webhooks.presence import endpoints_changed

logger = logging.getLogger(__name__)

EMAIL_TEMPLATE = "email/webhook_endpoint_disabled.html"


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days" if days >= 1 else f"{seconds:g} seconds"


def endpoint_disable_if_failing(*, endpoint_id: Any, now: dt.datetime) -> bool:
    """Disable the endpoint if it is enabled, has failed every attempt since longer than
    WEBHOOKS_DISABLE_AFTER_SECONDS, and failed at least WEBHOOKS_DISABLE_MIN_RECENT_FAILURES
    attempts in the last 24 hours (an endpoint that hears an event a week is not disabled on
    two failures days apart). One guarded UPDATE: disabled and emailed once. True if this call
    disabled it."""
    after = float(settings.WEBHOOKS_DISABLE_AFTER_SECONDS)
    cutoff = now - dt.timedelta(seconds=after)
    reason = f"every attempt failed for {_days(after)}"
    failing = WebhookEndpoint.objects.filter(
        pk=endpoint_id, enabled=True, failing_since__lte=cutoff
    )
    if not failing.exists():
        return False
    needed = int(settings.WEBHOOKS_DISABLE_MIN_RECENT_FAILURES)
    recent = WebhookAttempt.objects.filter(
        endpoint_id=endpoint_id, ok=False, started_at__gte=now - dt.timedelta(days=1)
    )
    # Counted up to the threshold only (a LIMIT), not every failure of a busy endpoint's day.
    if recent[:needed].count() < needed:
        return False
    disabled = failing.update(
        enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    if disabled:
        try:
            endpoints_changed()
        except redis.RedisError:  # processes keep sending it messages, which die unsent
            logger.warning("webhook endpoints version not replaced", exc_info=True)
        logger.warning(
            "webhook endpoint disabled: %s", reason, extra={"endpoint": str(endpoint_id)}
        )
        transaction.on_commit(lambda: endpoint_disabled_notify(endpoint_id=endpoint_id))
    return bool(disabled)


def operator_emails(endpoint: WebhookEndpoint) -> list[str]:
    """The client's operators (ApiClient.operator_emails), else WEBHOOKS_ALERT_EMAILS."""
    named = [e.strip() for e in endpoint.client.operator_emails.split(",") if e.strip()]
    return named or list(settings.WEBHOOKS_ALERT_EMAILS)


def endpoint_disabled_notify(*, endpoint_id: Any) -> int:
    """Email the client's operators that the endpoint was disabled; the number emailed. A mail
    server that fails is logged (the admin notice remains)."""
    endpoint = WebhookEndpoint.objects.select_related("client").get(pk=endpoint_id)
    to = operator_emails(endpoint)
    if not to:
        logger.warning(
            "webhook endpoint disabled; nobody to email", extra={"endpoint": str(endpoint_id)}
        )
        return 0
    context = {
        "endpoint": endpoint,
        "client": endpoint.client,
        "failing_since": endpoint.failing_since,
        "reason": endpoint.disabled_reason,
        "base_url": settings.PUBLIC_BASE_URL,
    }
    try:
        BaseEmailMessage(template_name=EMAIL_TEMPLATE, context=context).send(to=to)
    except Exception:  # SMTP down: the endpoint stays disabled and the admin shows it
        logger.exception("webhook endpoint disabled; email not sent")
        return 0
    return len(to)


def endpoints_disabled_unseen() -> list[WebhookEndpoint]:
    """The endpoints the service disabled (not their clients), for the admin's notice."""
    return list(
        WebhookEndpoint.objects.filter(enabled=False)
        .exclude(disabled_reason="")
        .select_related("client")
        .order_by("-disabled_at")[:20]
    )


def endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Enabled again (by its client or an operator): a fresh start, the notice gone."""
    endpoint.enabled = True
    endpoint.failing_since = None
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.updated_at = timezone.now()
