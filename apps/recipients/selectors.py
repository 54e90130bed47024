"""Reads for recipients: contact addresses and the rules that route to them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Field, QuerySet, TextField, prefetch_related_objects
from django.db.models.expressions import RawSQL

from apps.clients.models import ApiClient
from apps.core.compiled import CompiledQuery
from apps.recipients.models import Device, Preference, Recipient, Suppression
from apps.recipients.signals import recipient_describing
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


def recipients_for_sending(
    *, client: ApiClient, external_ids: Iterable[str], channels: Iterable[str]
) -> tuple[list[Recipient], set[tuple[int, str]]]:
    """The client's live recipients among `external_ids`, with their preferences (and devices
    when a channel reaches devices), and the (recipient pk, channel) pairs whose address is on
    the client's suppression list.

    On PostgreSQL the suppression list is read in the same query (a subquery per recipient
    comparing the address in its compared form and its hash); a recipient whose address that
    SQL form could get wrong (not ASCII, or not already in its compared form) is checked again
    with `suppressions_among`, so the answer is the same everywhere."""
    devices, shape = _sending_shape(tuple(channels))
    listed = list(shape)
    if connection.vendor != "postgresql" or not listed:
        rows = Recipient.objects.filter(
            client=client, external_id__in=list(external_ids), erased_at__isnull=True
        ).select_related("preference")
        recipients = list(rows.prefetch_related("devices") if devices else rows)
        return recipients, _suppressed_pairs(client.pk, recipients, listed)
    # Built and compiled once per process, thread and set of channels (most of this read's
    # CPU was Django compiling it), run with the client and the ids.
    recipients = _for_sending.run(shape, client.pk, list(external_ids))
    if devices:
        prefetch_related_objects(recipients, "devices")
    suppressed: set[tuple[int, str]] = set()
    unsure = []
    for recipient in recipients:
        if all(_sql_comparable(recipient, c) for c in listed):
            found = str(getattr(recipient, "suppressed_on", "") or "").split(",")
            suppressed |= {(recipient.pk, c) for c in listed if c in found}
        else:
            unsure.append(recipient)
    return recipients, suppressed | _suppressed_pairs(client.pk, unsure, listed)


@lru_cache(maxsize=64)
def _sending_shape(channels: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """Whether a channel reaches devices (their rows are read only then), and the channels
    whose addresses a suppression list holds, in order, once each."""
    unique = list(dict.fromkeys(channels))
    listed = tuple(c for c in unique if spec(c).suppressible)
    return any(spec(c).per_device for c in unique), listed


def _for_sending_query(
    listed: tuple[str, ...], client_id: int, external_ids: list[str]
) -> QuerySet[Recipient]:
    """The client's live recipients among `external_ids` (one array parameter), with their
    preferences and the channels of `listed` their address is suppressed on (PostgreSQL)."""
    table = connection.ops.quote_name(Recipient._meta.db_table)
    column = connection.ops.quote_name(str(Recipient._meta.get_field("external_id").column))
    return (
        Recipient.objects.filter(
            # The names are ours; the ids are one parameter (an array).
            RawSQL(f"{table}.{column} = ANY(%s)", [external_ids], output_field=BooleanField()),  # noqa: S611
            client_id=client_id,
            erased_at__isnull=True,
        )
        .select_related("preference")
        .annotate(suppressed_on=_suppressed_on(list(listed)))
    )


_for_sending = CompiledQuery(_for_sending_query, kinds=(int, list))


def _suppressed_pairs(
    client_id: int, recipients: list[Recipient], channels: list[str]
) -> set[tuple[int, str]]:
    if not recipients or not channels:
        return set()
    listed = suppressions_among(client_id=client_id, recipients=recipients, channels=channels)
    return {
        (r.pk, c)
        for r in recipients
        for c in channels
        if (c, recipient_address(recipient=r, channel=c)) in listed
    }


@lru_cache(maxsize=16)
def _case_insensitive(channel: str) -> bool:
    return spec(channel).normalise("A") == "a"


def _sql_comparable(recipient: Recipient, channel: str) -> bool:
    """Whether `_suppressed_on`'s SQL form of this address (lower() or as stored) is exactly
    the channel's compared form: true for ASCII addresses stored as they compare."""
    raw = recipient_contact(recipient=recipient, channel=channel)
    if not raw.isascii():
        return False
    sql_form = raw.lower() if _case_insensitive(channel) else raw
    return spec(channel).normalise(raw) == sql_form


def _suppressed_on(channels: list[str]) -> RawSQL:
    """The channels (comma-separated) on which the recipient's address, or its hash, is on its
    client's suppression list (PostgreSQL)."""
    quote = connection.ops.quote_name
    recipient = quote(Recipient._meta.db_table)
    conditions, params = [], []
    for channel in channels:
        field = Recipient._meta.get_field(spec(channel).address_field)
        assert isinstance(field, Field)  # noqa: S101 - a concrete column of ours
        form = f"{recipient}.{quote(str(field.column))}"
        # COLLATE "C": lower() maps A-Z only, whatever the column's or database's collation (a
        # Turkish one lowers I to U+0131); `_sql_comparable` leaves non-ASCII to Python.
        form = f'lower({form} COLLATE "C")' if _case_insensitive(channel) else form
        hashed = f"'sha256:' || encode(sha256(convert_to({form}, 'UTF8')), 'hex')"
        conditions.append(f"(s.channel = %s AND {form} <> '' AND s.address IN ({form}, {hashed}))")
        params.append(channel)
    # Table and column names are ours; the channels are parameters.
    sql = (
        f"SELECT COALESCE(string_agg(s.channel, ','), '') FROM "  # noqa: S608
        f"{quote(Suppression._meta.db_table)} s WHERE s.client_id = {recipient}.client_id "
        f"AND ({' OR '.join(conditions)})"
    )
    return RawSQL(sql, params, output_field=TextField())  # noqa: S611 - names ours, values params


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


def recipient_described(*, recipient: Recipient) -> dict[str, Any]:
    """The fields the apps above add to a recipient's representation (`recipient_describing`:
    the topics it follows, for one)."""
    extra: dict[str, Any] = {}
    for _, fields in recipient_describing.send(sender=Recipient, recipient=recipient):
        if isinstance(fields, dict):
            extra.update(fields)
    return extra
