"""Writes for recipients: profile upsert, GDPR erasure, preferences, devices, suppressions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from apps.clients.models import ApiClient
from apps.recipients.models import Device, Preference, Recipient, RecipientEvent, Suppression
from apps.recipients.personal_data import ERASED, PersonalData
from apps.recipients.selectors import recipient_address, suppression_hashed
from apps.recipients.signals import recipient_erasing, recipient_event_recorded
from notifier.channels import CHANNELS, spec

SUPPRESSION_ADDRESS_MAX = Suppression._meta.get_field("address").max_length or 320
PROFILE_FIELDS = ("email", "phone", "locale", "timezone", "name", "data")
ERASED_PREFIX = "erased-"


class RecipientGone(Http404):
    """The recipient was erased, perhaps while this request ran: nothing may be written for it
    (a 404 wherever it reaches a view)."""


def recipient_lock_live(*, recipient: Recipient) -> Recipient:
    """The recipient's row, locked as recipient_erase locks it (so an erasure and this write
    run one after the other), re-read; RecipientGone when it is erased."""
    locked = Recipient.objects.select_for_update(no_key=True).get(pk=recipient.pk)
    if locked.erased_at is not None:
        raise RecipientGone("recipient erased")
    return locked


@transaction.atomic
def recipient_profile_update(*, recipient: Recipient, profile: Mapping[str, Any]) -> Recipient:
    """Set the profile fields given on this recipient's own row (never by external id, which an
    erasure may have freed); RecipientGone when it is erased."""
    locked = recipient_lock_live(recipient=recipient)
    values = {f: profile[f] for f in PROFILE_FIELDS if f in profile}
    if values:
        for name, value in values.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*values, "updated_at"])
    return locked


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


def recipients_upsert_inline(
    *, client: ApiClient, profiles: Mapping[str, Mapping[str, Any]]
) -> None:
    """Create or update many recipients (external id -> the profile fields given, as for
    `recipient_upsert`; an id given without fields is created if missing, never touched).

    Every row lock is taken in one `INSERT ... ON CONFLICT DO UPDATE` over all the rows sorted
    by external id, so two requests naming the same ids in any order wait for each other instead
    of deadlocking; the rows are then updated once per distinct set of fields given, each row
    already locked. When every row gives the same fields, the first statement is the update too.
    """
    rows: dict[tuple[str, ...], list[Recipient]] = {}
    for external_id in sorted(profiles):  # code point order: the order the row locks are taken
        values = {f: profiles[external_id][f] for f in PROFILE_FIELDS if f in profiles[external_id]}
        row = Recipient(client=client, external_id=external_id, **values)
        rows.setdefault(tuple(values), []).append(row)
    if len(rows) == 1:
        [(names, batch)] = rows.items()
        _upsert(batch, names=names)
        return
    _upsert(sorted((r for b in rows.values() for r in b), key=_ext_id), names=())
    for names in sorted(n for n in rows if n):
        _upsert(rows[names], names=names)


def _ext_id(recipient: Recipient) -> str:
    return recipient.external_id


def _upsert(rows: list[Recipient], *, names: tuple[str, ...]) -> None:
    """Insert `rows` or update `names` of the existing ones (and their `updated_at`); with no
    names, set `external_id` to itself: the row is locked and its `updated_at` kept."""
    Recipient.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["client", "external_id"],
        update_fields=[*names, "updated_at"] if names else ["external_id"],
    )


@transaction.atomic
def recipient_erase(*, recipient: Recipient) -> Recipient:
    """GDPR erasure: delete devices, preferences and inbox, blank the profile, strip the
    recipient's addresses, numbers and device tokens from every row that kept them, and
    anonymise delivery history. The row stays (deliveries point at it) under a random
    external id. Suppressions of its addresses stay in force, kept as hashes."""
    if not recipient_erasing.has_listeners():  # erasing only the profile would be a lie
        raise ImproperlyConfigured("nothing erases the recipient's history: apps.deliveries?")
    # FOR NO KEY UPDATE, for now: a request (or a digest sweep) that wrote rows pointing at it
    # holds KEY SHARE (its foreign-key check), which this lock does not wait for; the erasure
    # waits instead on the digest window that request holds, which commits first. Not for
    # long: the `recipient.save()` below changes `external_id`, a column of the unique key
    # (client, external_id), so PostgreSQL takes FOR UPDATE on the row there (waiting for any
    # transaction still holding KEY SHARE), and from then on new rows pointing at it wait for
    # the erasure to commit.
    recipient = Recipient.objects.select_for_update(no_key=True).get(pk=recipient.pk)
    alias = f"{ERASED_PREFIX}{uuid.uuid4().hex}"
    personal = PersonalData()
    # Providers echo a number with or without its `+` ("To 15551234567 unreachable").
    personal.add([recipient.email, recipient.phone, recipient.phone.removeprefix("+")])
    devices = list(recipient.devices.values_list("pk", "token"))
    personal.add(token for _, token in devices)
    recipient.devices.all().delete()
    Preference.objects.filter(recipient=recipient).delete()
    RecipientEvent.objects.filter(recipient=recipient).delete()  # what they did via our links
    # The inbox and the delivery history live in the apps above this one.
    recipient_erasing.send(sender=Recipient, recipient=recipient, alias=alias, personal=personal)
    suppressions_hash(recipient=recipient)
    _admin_log_anonymise(recipient=recipient, alias=alias, device_ids=[pk for pk, _ in devices])
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


def _admin_log_anonymise(*, recipient: Recipient, alias: str, device_ids: list[int]) -> None:
    """The admin's history names objects by their str(): the external id, a token's start."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Recipient), object_id=str(recipient.pk)
    ).update(object_repr=alias)
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Device),
        object_id__in=[str(pk) for pk in device_ids],
    ).update(object_repr=ERASED)


def suppressions_hash(*, recipient: Recipient) -> int:
    """Keep the suppressions of the recipient's email and number in force without the
    address: each becomes its hash (selectors.suppression_hashed), which still matches
    the address should it come back. Returns how many rows changed."""
    changed = 0
    for channel in (c.channel for c in CHANNELS.values() if c.suppressible):
        address = recipient_address(recipient=recipient, channel=channel)
        if not address:
            continue
        rows = Suppression.objects.filter(
            client_id=recipient.client_id, channel=channel, address=address
        )
        hashed = suppression_hashed(address)
        if Suppression.objects.filter(
            client_id=recipient.client_id, channel=channel, address=hashed
        ).exists():
            changed += rows.delete()[0]
        else:
            changed += rows.update(address=hashed)
    return changed


@transaction.atomic
def preference_update(*, recipient: Recipient, changes: Mapping[str, Any]) -> Preference:
    """Set the preference keys given (`channels`, `categories`, `quiet_hours`, `daily_limit`,
    `digest`);
    keys not given keep their value. `quiet_hours: null` clears quiet hours. RecipientGone when
    the recipient is erased (no row is made again for it)."""
    recipient_lock_live(recipient=recipient)
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
    if "digest" in changes:
        pref.digest = dict(changes["digest"])
    pref.save()
    return pref


@transaction.atomic
def preference_update_announced(
    *, recipient: Recipient, changes: Mapping[str, Any], source: str
) -> Preference:
    """preference_update, recorded in the recipient's timeline and announced
    (`recipient.preferences_updated`) in the same transaction: PUT .../preferences (`api`)."""
    pref = preference_update(recipient=recipient, changes=changes)
    event = recipient_event_record(
        recipient=recipient, kind=RecipientEvent.Kind.PREFERENCES_UPDATED, source=source
    )
    recipient_event_emit(event=event)
    return pref


@transaction.atomic
def preference_unsubscribe(
    *, recipient: Recipient, category: str, channel: str, source: str
) -> RecipientEvent | None:
    """Opt the recipient out of `category` on `channel` (an unsubscribe link), recorded in the
    recipient's timeline and announced (`recipient_event_emit`). Idempotent: None, and
    nothing recorded, when the recipient was already opted out. RecipientGone when erased."""
    recipient_lock_live(recipient=recipient)
    pref, _ = Preference.objects.select_for_update().get_or_create(recipient=recipient)
    flags = dict(pref.categories.get(category, {}))
    if flags.get(channel) is False:
        return None
    pref.categories = {**pref.categories, category: {**flags, channel: False}}
    pref.save()
    event = recipient_event_record(
        recipient=recipient,
        kind=RecipientEvent.Kind.UNSUBSCRIBED,
        category=category,
        channel=channel,
        source=source,
    )
    recipient_event_emit(event=event)
    return event


def recipient_event_record(
    *, recipient: Recipient, kind: str, source: str, category: str = "", channel: str = ""
) -> RecipientEvent:
    """One row in the recipient's timeline (the admin shows it)."""
    return RecipientEvent.objects.create(
        recipient=recipient, kind=kind, category=category, channel=channel, source=source
    )


def recipient_event_emit(*, event: RecipientEvent) -> None:
    """The hook for the outbound webhooks' `recipient.unsubscribed` and
    `recipient.preferences_updated`: `recipient_event_recorded` is sent with `event` inside the
    transaction that recorded it, so the webhooks' outbox rows commit (or roll back) with it."""
    recipient_event_recorded.send(sender=RecipientEvent, event=event)


@transaction.atomic
def device_register(*, recipient: Recipient, token: str, platform: str) -> tuple[Device, bool]:
    """Idempotent on `token` within the recipient's client: a token this client registered
    before moves to `recipient` and is reactivated. Other clients' rows with the same token
    are neither seen nor touched, so the answer does not tell whether they exist."""
    now = timezone.now()
    device, created = Device.objects.select_for_update().get_or_create(
        client_id=recipient.client_id,
        token=token,
        defaults={"recipient": recipient, "platform": platform},
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
    deleted, _ = Device.objects.filter(
        client_id=recipient.client_id, recipient=recipient, token=token
    ).delete()
    return deleted > 0


def device_deactivate(*, client_id: int, token: str, reason: str) -> bool:
    """Stop sending to a device token the provider rejected for this client. True if it was
    active. Another client's row with the same token learns of it on its own next send."""
    changed = Device.objects.filter(client_id=client_id, token=token, active=True).update(
        active=False, deactivated_reason=reason[:200]
    )
    return changed == 1


def suppression_normalize(*, channel: str, address: str) -> str:
    """The form addresses are compared in: email case-insensitively, numbers as given."""
    return spec(channel).normalise(address)


def suppression_create(*, client: ApiClient, channel: str, address: str, reason: str) -> bool:
    """Never send to this address on this channel again. True if it was not suppressed yet."""
    address = suppression_normalize(channel=channel, address=address)
    if not address or len(address) > SUPPRESSION_ADDRESS_MAX:
        # Nothing we send to is that long: a provider's report of it names no one of ours.
        return False
    if Suppression.objects.filter(
        client=client, channel=channel, address=suppression_hashed(address)
    ).exists():  # suppressed already, for a recipient since erased
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
