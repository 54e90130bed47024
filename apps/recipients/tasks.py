"""Celery tasks of the recipients app: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task

from apps.recipients.services import devices_prune_inactive


@shared_task(name="recipients.prune_devices", ignore_result=True, soft_time_limit=300)
def prune_devices() -> int:
    """Delete devices that have not been seen for DEVICE_INACTIVE_DAYS."""
    return devices_prune_inactive()
