"""Reads for recipients: contact addresses and the rules that route to them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db.models import QuerySet

from apps.clients.models import ApiClient
from apps.recipients.models import Device, Preference, Recipient, Suppression
from notifier.channels import Reach, spec
from notifier.routing import RecipientRules


def recipient_rules(*, recipient: Recipient) -> RecipientRules:
    try:
        pref: Preference | None = recipient.preference
    except Preference.DoesNotExist:
        pref = None
    if pref is None:
        return RecipientRules(timezone=recipient.timezone)
    return RecipientRules(
        timezone=recipient.timezone,
        channels=dict(pref.channels),
        categories=dict(pref.categories),
        quiet_start=pref.quiet_start,
        quiet_end=pref.quiet_end,
        daily_limit=pref.daily_limit,
    )


def recipient_active_devices(*, recipient: Recipient) -> list[Device]:
    return list(recipient.devices.filter(active=True).order_by("id"))


def recipient_has_address(*, recipient: Recipient, channel: str) -> bool:
    """Whether the recipient can be reached on `channel` at all."""
    reach = spec(channel).reach
    if reach is Reach.PROFILE:
        return bool(recipient_contact(recipient=recipient, channel=channel))
    if reach is Reach.DEVICE:
        return any(d.active for d in recipient.devices.all())  # uses a prefetch when there is one
    return recipient.erased_at is None


def recipient_contact(*, recipient: Recipient, channel: str) -> str:
    """Where a message on `channel` goes: the profile's address as given (email, phone), else
    the recipient's external id (push goes to each device token instead)."""
    return spec(channel).contact(recipient)


def recipient_address(*, recipient: Recipient, channel: str) -> str:
    """The address a suppression applies to, in its compared form ("" for channels without
    one)."""
    channel_spec = spec(channel)
    if not channel_spec.address_field:
        return ""
    return channel_spec.normalise(recipient_contact(recipient=recipient, channel=channel))


def suppression_hashed(address: str) -> str:
    """How a suppression outlives the erasure of the person it was for: the address's hash
    (compared, never shown). Unkeyed, so that it survives a rotation of the secret key."""
    return "sha256:" + hashlib.sha256(address.encode()).hexdigest()


def recipient_is_suppressed(*, recipient: Recipient, channel: str) -> bool:
    """Whether the recipient's address on `channel` is on the client's suppression list."""
    address = recipient_address(recipient=recipient, channel=channel)
    if not address:
        return False
    return Suppression.objects.filter(
        client_id=recipient.client_id,
        channel=channel,
        address__in=[address, suppression_hashed(address)],
    ).exists()


def suppressions_among(
    *, client_id: int, recipients: Iterable[Recipient], channels: Iterable[str]
) -> set[tuple[str, str]]:
    """The (channel, address) pairs of these recipients on the client's suppression list."""
    wanted = {
        (channel, address)
        for recipient in recipients
        for channel in channels
        if (address := recipient_address(recipient=recipient, channel=channel))
    }
    if not wanted:
        return set()
    # A row holds the address, or its hash once the person it was for was erased.
    forms = {a: a for _, a in wanted} | {suppression_hashed(a): a for _, a in wanted}
    rows = Suppression.objects.filter(
        client_id=client_id,
        channel__in={c for c, _ in wanted},
        address__in=set(forms),
    ).values_list("channel", "address")
    return {(c, forms[a]) for c, a in rows if (c, forms.get(a)) in wanted}


def recipient_context(*, recipient: Recipient) -> dict[str, object]:
    """What templates see as `{{ recipient.* }}`."""
    return {
        "external_id": recipient.external_id,
        "name": recipient.name,
        "locale": recipient.locale,
        "data": recipient.data,
    }


def recipients_visible_to(*, client: ApiClient) -> QuerySet[Recipient]:
    """What a key may see: its client's live recipients, or every client's for ops keys."""
    qs = Recipient.objects.filter(erased_at__isnull=True)
    return qs if client.is_ops else qs.filter(client=client)


def recipient_get(*, client: ApiClient, external_id: str) -> Recipient | None:
    """The recipient `external_id` as `client` sees it. Ops keys find their own client's first,
    then the oldest recipient of that id in any client."""
    own = Recipient.objects.filter(client=client, external_id=external_id, erased_at__isnull=True)
    found = own.first()
    if found is None and client.is_ops:
        found = (
            recipients_visible_to(client=client)
            .filter(external_id=external_id)
            .order_by("id")
            .first()
        )
    return found


def recipient_preference(*, recipient: Recipient) -> Preference | None:
    return Preference.objects.filter(recipient=recipient).first()
