"""Writes for recipients: profile upsert, GDPR erasure, preferences, devices, suppressions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clients.models import ApiClient
from apps.recipients.models import Device, Preference, Recipient, Suppression

PROFILE_FIELDS = ("email", "phone", "locale", "timezone", "name", "data")
ERASED_PREFIX = "erased-"


@transaction.atomic
def recipient_upsert(
    *, client: ApiClient, external_id: str, profile: Mapping[str, Any]
) -> tuple[Recipient, bool]:
    """Create the recipient or update the profile fields given. Returns (recipient, created)."""
    values = {f: profile[f] for f in PROFILE_FIELDS if f in profile}
    recipient, created = Recipient.objects.select_for_update().get_or_create(
        client=client, external_id=external_id, defaults=values
    )
    if not created and values:
        for name, value in values.items():
            setattr(recipient, name, value)
        recipient.save(update_fields=[*values, "updated_at"])
    return recipient, created


@transaction.atomic
def recipient_erase(*, recipient: Recipient) -> Recipient:
    """GDPR erasure: delete devices, preferences and inbox, blank the profile, and anonymise
    delivery history. The row stays (deliveries point at it) under a random external id."""
    # Imported here: deliveries and inbox import this app's models at module level.
    from apps.deliveries.erasure import deliveries_anonymise
    from apps.inbox.erasure import inbox_erase

    recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
    alias = f"{ERASED_PREFIX}{uuid.uuid4().hex}"
    recipient.devices.all().delete()
    Preference.objects.filter(recipient=recipient).delete()
    inbox_erase(recipient=recipient)
    deliveries_anonymise(recipient=recipient, alias=alias)
    recipient.external_id = alias
    recipient.email = ""
    recipient.phone = ""
    recipient.name = ""
    recipient.data = {}
    recipient.locale = "en"
    recipient.timezone = "UTC"
    recipient.erased_at = timezone.now()
    recipient.save()
    return recipient


@transaction.atomic
def preference_update(*, recipient: Recipient, changes: Mapping[str, Any]) -> Preference:
    """Set the preference keys given (`channels`, `categories`, `quiet_hours`, `daily_limit`);
    keys not given keep their value. `quiet_hours: null` clears quiet hours."""
    pref, _ = Preference.objects.select_for_update().get_or_create(recipient=recipient)
    if "channels" in changes:
        pref.channels = dict(changes["channels"])
    if "categories" in changes:
        pref.categories = {k: dict(v) for k, v in changes["categories"].items()}
    if "quiet_hours" in changes:
        quiet: Mapping[str, dt.time] | None = changes["quiet_hours"]
        pref.quiet_start = quiet["start"] if quiet else None
        pref.quiet_end = quiet["end"] if quiet else None
    if "daily_limit" in changes:
        pref.daily_limit = changes["daily_limit"]
    pref.save()
    return pref


@transaction.atomic
def device_register(*, recipient: Recipient, token: str, platform: str) -> tuple[Device, bool]:
    """Idempotent on `token`: a known token moves to `recipient` and is reactivated."""
    now = timezone.now()
    device, created = Device.objects.select_for_update().get_or_create(
        token=token, defaults={"recipient": recipient, "platform": platform}
    )
    if not created:
        device.recipient = recipient
        device.platform = platform
        device.active = True
        device.deactivated_reason = ""
        device.last_seen_at = now
        device.save()
    return device, created


@transaction.atomic
def device_remove(*, recipient: Recipient, token: str) -> bool:
    """Unregister the recipient's device with `token`. False when it has no such device."""
    deleted, _ = Device.objects.filter(recipient=recipient, token=token).delete()
    return deleted > 0


def device_deactivate(*, token: str, reason: str) -> bool:
    """Stop sending to a device token the provider rejected. True if it was active."""
    changed = Device.objects.filter(token=token, active=True).update(
        active=False, deactivated_reason=reason[:200]
    )
    return changed == 1


def suppression_normalize(*, channel: str, address: str) -> str:
    """The form addresses are compared in: email case-insensitively, numbers as given."""
    address = address.strip()
    return address.lower() if channel == "email" else address


def suppression_create(*, client: ApiClient, channel: str, address: str, reason: str) -> bool:
    """Never send to this address on this channel again. True if it was not suppressed yet."""
    address = suppression_normalize(channel=channel, address=address)
    if not address:
        return False
    try:
        with transaction.atomic():
            _, created = Suppression.objects.get_or_create(
                client=client,
                channel=channel,
                address=address,
                defaults={"reason": reason[:100]},
            )
    except IntegrityError:  # a concurrent webhook suppressed it first
        return False
    return created


@transaction.atomic
def devices_prune_inactive(*, now: dt.datetime | None = None) -> int:
    """Delete devices not seen (registered again) for DEVICE_INACTIVE_DAYS. Returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.DEVICE_INACTIVE_DAYS)
    deleted, _ = Device.objects.filter(last_seen_at__lt=cutoff).delete()
    return deleted
