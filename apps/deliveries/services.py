"""Writes for notifications and deliveries: creation, queueing, cancel."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clients.models import ApiClient
from apps.core import metrics
from apps.core.errors import Conflict, InvalidInput
from apps.deliveries.lifecycle import (
    deliveries_cancel,
    delivery_new,
    fallback_for_new,
    notification_insert,
)
from apps.deliveries.models import CANCELLABLE, Delivery, Notification
from apps.deliveries.selectors import notification_skipped_deliveries
from apps.recipients.models import Recipient
from apps.recipients.selectors import recipient_context, recipients_for_sending
from apps.recipients.services import recipients_upsert_inline
from apps.templates.cache import template_versions
from apps.templates.models import Template
from apps.templates.selectors import version_channels
from apps.templates.validation import version_render_check

# Why a requested recipient got no delivery: its external id names no recipient of the client
# (reported in the 202 body and on the notification; see `Notification.skipped`).
UNKNOWN_RECIPIENT = "unknown_recipient"


@dataclass
class NotificationRequest:
    recipients: list[str]
    template: str
    variables: dict[str, Any] = field(default_factory=dict)
    channels: list[str] | None = None
    priority: str | None = None
    category: str | None = None
    send_at: dt.datetime | None = None
    fallback: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    # Inline recipients: external id -> the profile fields given with it (upserted first).
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Unknown recipients are a 400 (as before inline recipients), not skipped.
    strict: bool = False

    def fingerprint(self) -> str:
        body: dict[str, Any] = {
            "recipients": self.recipients,
            "template": self.template,
            "variables": self.variables,
            "channels": self.channels,
            "priority": self.priority,
            "category": self.category,
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "fallback": self.fallback,
        }
        # Only when given: the hashes of requests without them stay what they were.
        if self.profiles:
            body["profiles"] = self.profiles
        if self.strict:
            body["strict"] = True
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _existing_response(client: ApiClient, request: NotificationRequest) -> dict[str, Any] | None:
    existing = (
        Notification.objects.filter(client=client, idempotency_key=request.idempotency_key)
        .only("request_hash", "response")
        .first()
    )
    if existing is None:
        return None
    if existing.request_hash != request.fingerprint():
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            fields={"idempotency_key": ["reused with a different body"]},
        )
    return dict(existing.response)


def notification_create(
    *, client: ApiClient, request: NotificationRequest
) -> tuple[dict[str, Any], bool]:
    """Validate, then create the notification and its deliveries in one transaction.

    Returns the 202 body and whether it was created now (False: an idempotent replay).
    """
    if request.idempotency_key:
        previous = _existing_response(client, request)
        if previous is not None:
            return previous, False
    try:
        return _notification_create(client, request), True
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race.
        if request.idempotency_key:
            previous = _existing_response(client, request)
            if previous is not None:
                return previous, False
        raise


@dataclass
class _Checked:
    template: Template
    version: Any
    channels: list[str]
    fallback: list[str]
    recipients: list[Recipient]
    suppressed: set[tuple[int, str]]
    unknown: list[str]


def _channels_check(request: NotificationRequest, version: Any) -> tuple[list[str], list[str]]:
    template = version.template
    available = version_channels(version=version)
    fallback = list(dict.fromkeys(request.fallback))
    # Without explicit channels: every channel of the template except the fallback ones.
    channels = list(dict.fromkeys(request.channels or [c for c in available if c not in fallback]))
    for name, wanted in (("channels", channels), ("fallback", fallback)):
        absent = [c for c in wanted if c not in available]
        if absent:
            raise InvalidInput(
                f"Template {template.key!r} has no variant for: {', '.join(absent)}.",
                fields={name: [f"no {c} variant in template {template.key!r}" for c in absent]},
            )
    overlap = [c for c in fallback if c in channels]
    if overlap:
        raise InvalidInput(
            f"Fallback channels are also requested channels: {', '.join(overlap)}.",
            fields={"fallback": [f"{c} is already in channels" for c in overlap]},
        )
    if not channels:
        raise InvalidInput(
            "No channel left to send on before the fallback.",
            fields={"channels": ["no channel to send on first: name some in `channels`"]},
        )
    return channels, fallback


def _request_check(
    client: ApiClient, request: NotificationRequest
) -> tuple[Any, list[str], list[str]]:
    """The checks that need no recipient: the template, its variables and channels. Run before
    the inline upsert, so that their 400 writes nothing and takes no row lock."""
    version = template_versions.current(client=client, key=request.template)
    if version is None:
        raise InvalidInput(
            f"Unknown template {request.template!r}.",
            fields={"template": [f"unknown template {request.template!r}"]},
        )
    missing = [name for name in version.variables if name not in request.variables]
    if missing:
        raise InvalidInput(
            f"Missing template variables: {', '.join(missing)}.",
            fields={"variables": [f"missing variable {name!r}" for name in missing]},
        )
    channels, fallback = _channels_check(request, version)
    return version, channels, fallback


def _recipients_check(
    client: ApiClient,
    request: NotificationRequest,
    version: Any,
    channels: list[str],
    fallback: list[str],
) -> _Checked:
    wanted_ids = list(dict.fromkeys(request.recipients))
    # Suppressions (of the fallback channels too) come with the recipients: one query.
    recipients, suppressed = recipients_for_sending(
        client=client, external_ids=wanted_ids, channels=[*channels, *fallback]
    )
    found = {r.external_id for r in recipients}
    unknown = [r for r in wanted_ids if r not in found]
    if unknown and (request.strict or not recipients):
        raise InvalidInput(
            f"Unknown recipients: {', '.join(unknown[:10])}.",
            fields={"recipients": [f"unknown recipient {r!r}" for r in unknown[:50]]},
        )
    order = {ext: i for i, ext in enumerate(wanted_ids)}
    recipients.sort(key=lambda r: order[r.external_id])
    # Too large, too slow or a broken subject is the caller's 400 now, not a dead letter later:
    # one render per variant the recipients' locales pick, with one of those recipients.
    by_locale: dict[str, dict[str, object]] = {}
    for recipient in recipients:
        if recipient.locale not in by_locale:
            by_locale[recipient.locale] = recipient_context(recipient=recipient)
    version_render_check(
        version=version,
        channels=[*channels, *fallback],
        variables=request.variables,
        recipients=by_locale,
    )
    return _Checked(version.template, version, channels, fallback, recipients, suppressed, unknown)


def delivery_summary(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": str(delivery.id),
        "recipient": delivery.recipient.external_id,
        "channel": delivery.channel,
        "status": delivery.status,
        "reason": delivery.reason,
    }


@transaction.atomic
def _notification_create(client: ApiClient, request: NotificationRequest) -> dict[str, Any]:
    version, channels, fallback = _request_check(client, request)
    # Inline recipients: upserted in this transaction once the request is known to be valid
    # (their row locks are then held only for the recipients' read and the render check).
    if request.profiles:
        recipients_upsert_inline(client=client, profiles=request.profiles)
    checked = _recipients_check(client, request, version, channels, fallback)
    template, recipients = checked.template, checked.recipients
    now = timezone.now()
    # Built first and inserted with its response: its id (a UUID) is known before the INSERT.
    notification = Notification(
        client=client,
        template=template,
        template_version=checked.version,
        variables=request.variables,
        channels=checked.channels,
        fallback=checked.fallback,
        priority=request.priority or template.default_priority,
        category=request.category or template.category,
        send_at=request.send_at,
        idempotency_key=request.idempotency_key,
        request_hash=request.fingerprint(),
        recipient_count=len(recipients),
        skipped=[{"recipient": r, "reason": UNKNOWN_RECIPIENT} for r in checked.unknown],
    )

    def suppressed(recipient: Recipient, channel: str) -> bool:
        return (recipient.pk, channel) in checked.suppressed

    deliveries = [
        delivery_new(
            notification,
            recipient,
            channel,
            send_at=request.send_at,
            now=now,
            suppressed=suppressed(recipient, channel),
        )
        for recipient in recipients
        for channel in checked.channels
    ]
    deliveries += fallback_for_new(
        notification=notification, deliveries=deliveries, suppressed=suppressed
    )
    notification.response = _accepted_body(notification, recipients, deliveries)
    notification_insert(notification=notification, deliveries=deliveries)
    metrics.notification_accepted(notification=notification, deliveries=deliveries)
    return dict(notification.response)


def _accepted_body(
    notification: Notification, recipients: Sequence[Recipient], deliveries: Sequence[Delivery]
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(notification.id), "status": "accepted"}
    if len(recipients) == 1:
        body["deliveries"] = [
            *(delivery_summary(d) for d in deliveries),
            *notification_skipped_deliveries(notification=notification),
        ]
    if notification.skipped:
        body["skipped"] = list(notification.skipped)
    return body


@transaction.atomic
def notification_cancel(*, notification: Notification) -> list[Delivery]:
    """Cancel every delivery not yet handed to a provider. Returns the cancelled ones."""
    deliveries = list(
        notification.deliveries.select_for_update().filter(status__in=CANCELLABLE).order_by("id")
    )
    return deliveries_cancel(deliveries, reason="cancelled by client")
