"""Webhook tasks: thin adapters on the `webhooks` queue (routed by name, `webhooks.*`), but for
the sweep, routed to `maintenance` (config/settings/base.py)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.webhooks.attempts import message_attempt
from apps.webhooks.dispatch import messages_dispatch, messages_dispatch_due


@shared_task(name="webhooks.dispatch", ignore_result=True, soft_time_limit=30)
def dispatch(message_ids: list[int]) -> int:
    """Fan a committed batch out into one deliver task per message, within each endpoint's free
    in-flight slots (the rest left to the sweep)."""
    return messages_dispatch(message_ids=message_ids)


@shared_task(name="webhooks.deliver", ignore_result=True, soft_time_limit=60)
def deliver(message_id: int) -> str:
    """One attempt at one message (its retry is the row's `next_attempt_at`, not a Celery retry)."""
    return message_attempt(message_id=message_id)


@shared_task(name="webhooks.dispatch_due", ignore_result=True, soft_time_limit=30)
def dispatch_due() -> int:
    """Beat's sweep: publish the messages due and not on their way."""
    return messages_dispatch_due(batch=settings.WEBHOOKS_SWEEP_BATCH)
