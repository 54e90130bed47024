"""Writes for notifications and deliveries: creation, queueing, cancel."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.clients.models import ApiClient
from apps.core.bound import stale_plan_rerun
from apps.core.errors import Conflict
from apps.deliveries.best_time import BEST_TIME, send_times_apply, send_times_plan
from apps.deliveries.building import Workflows, deliveries_build, deliveries_counted
from apps.deliveries.digests import digest_items_cancel
from apps.deliveries.fanout import fan_out_accept, fan_out_stop
from apps.deliveries.lifecycle import deliveries_cancel, notification_insert
from apps.deliveries.models import CANCELLABLE, Delivery, DeliveryStatus, Notification
from apps.deliveries.request_checks import Checked, recipients_check, request_check
from apps.deliveries.selectors import notification_skipped_deliveries
from apps.deliveries.signals import notification_cancelled
from apps.deliveries.throttles import Slots, throttle_slots
from apps.deliveries.workflows import RequestThrottle, throttle_for
from apps.recipients.models import Recipient
from apps.recipients.services import recipients_upsert_inline
from notifier.workflows import EscalationStep

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
    topic: str | None = None  # instead of recipients: the topic's subscribers (fanout.py)
    exclude: list[str] = field(default_factory=list)
    throttle: RequestThrottle = None
    escalation: list[EscalationStep] = field(default_factory=list)
    # A digest declaration overriding the template's, or False for none (None: the template's).
    digest: dict[str, Any] | bool | None = None
    # `"send_at": "best_time"` (then `send_at` is None), and the percentage sent at once.
    best_time: bool = False
    best_time_holdout: int | None = None

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
        if self.topic is not None:  # only then: the hashes of earlier requests stay the same
            body |= {"topic": self.topic, "exclude": self.exclude}
        if self.throttle is not None:
            body["throttle"] = self.throttle and self.throttle.as_json()
        if self.escalation:
            body["escalation"] = [step.as_json() for step in self.escalation]
        if self.digest is not None:  # absent: the hash of bodies from before digests
            body["digest"] = self.digest
        if self.best_time:
            body["send_at"] = BEST_TIME
        if self.best_time_holdout is not None:
            body["best_time_holdout"] = self.best_time_holdout
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


def _idempotency_lock(client: ApiClient, key: str) -> None:
    """Hold a transaction-scoped lock on (client, key) in PostgreSQL. Elsewhere (SQLite in
    development) nothing: writes are serialised there anyway."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"{client.pk}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)  # a bigint, as the lock wants
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def notification_create(
    *, client: ApiClient, request: NotificationRequest
) -> tuple[dict[str, Any], bool]:
    """Validate, then create the notification and its deliveries in one transaction, or, when
    the request's only write is the one INSERT of its rows (`_one_write`), as that statement.

    Returns the 202 body and whether it was created now (False: an idempotent replay).
    """
    accepting = None
    if request.idempotency_key:
        previous = _existing_response(client, request)
        if previous is not None:
            return previous, False
    else:
        accepting = _accepting(request, request_check(client, request))
        if _one_write(request, accepting):
            # No BEGIN / COMMIT: the recipients' read, then one INSERT of the notification with
            # its deliveries and events, which is atomic by itself (and its foreign keys are
            # checked at its end); its publish follows it as it would follow a COMMIT.
            with throttle_slots() as slots:
                return _notification_create(client, request, slots, accepting), True
    try:
        # Run again once if a migration from another process left a prepared read stale.
        return stale_plan_rerun(lambda: _create_in_transaction(client, request, accepting))
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race.
        if request.idempotency_key:
            previous = _existing_response(client, request)
            if previous is not None:
                return previous, False
        raise


def _create_in_transaction(
    client: ApiClient, request: NotificationRequest, accepting: _Accepting | None
) -> tuple[dict[str, Any], bool]:
    # A throttle's slots go back if the notification is not created after all (the block
    # raises, commit included).
    with throttle_slots() as slots, transaction.atomic():
        if request.idempotency_key:
            # Serialise the requests with this key before any slot is taken, then look again:
            # a replay must not take a slot the stored notification then lacks.
            _idempotency_lock(client, request.idempotency_key)
            previous = _existing_response(client, request)
            if previous is not None:
                return previous, False
        return _notification_create(client, request, slots, accepting), True


@dataclass(frozen=True)
class _Accepting:
    """A request checked without its recipients (`request_check`), with its acceptance time,
    priority and the workflows that apply."""

    checked: Checked
    now: dt.datetime
    priority: str
    workflows: Workflows


def _accepting(request: NotificationRequest, checked: Checked) -> _Accepting:
    template = checked.template
    priority = request.priority or template.default_priority
    now = timezone.now()  # the acceptance time, as `created_at` records it
    workflows = Workflows(
        throttle=throttle_for(template=template, requested=request.throttle, priority=priority),
        digest=checked.digest,
        digest_off=checked.digest_off,
        escalation=request.escalation,
        scheduled=request.best_time or bool(request.send_at and request.send_at > now),
    )
    return _Accepting(checked, now, priority, workflows)


def _one_write(request: NotificationRequest, accepting: _Accepting) -> bool:
    """Whether the request writes nothing but its one INSERT (on PostgreSQL; elsewhere that is
    three statements): no idempotency key (its lock and look-up), inline recipients (their
    upsert), topic (the fan-out's rows), throttle (its slots, given back on a rollback), digest
    (its windows) or best time (its own read, kept with the rest). What the INSERT's deliveries
    announce (one skipped at creation: an outbound webhook's row) is written with it in a
    transaction of its own (`lifecycle.notification_insert`)."""
    workflows = accepting.workflows
    return (
        connection.vendor == "postgresql"
        and not request.idempotency_key
        and not request.profiles
        and request.topic is None
        and not request.best_time
        and workflows.throttle is None
        and workflows.digest_joining() is None
    )


def delivery_summary(delivery: Delivery, *, best_time: bool = False) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": str(delivery.id),
        "recipient": delivery.recipient.external_id,
        "channel": delivery.channel,
        "status": delivery.status,
        "reason": delivery.reason,
    }
    if best_time:  # when it is scheduled (null: sent at once), and the A/B arm with a holdout
        at = delivery.not_before if delivery.status == DeliveryStatus.SCHEDULED else None
        summary["not_before"] = at.isoformat() if at else None
        summary["variant"] = delivery.variant
    return summary


def _notification_create(
    client: ApiClient,
    request: NotificationRequest,
    slots: Slots,
    accepting: _Accepting | None,
) -> dict[str, Any]:
    """Inside notification_create's transaction (or as its one write: `_one_write`)."""
    if accepting is None:
        accepting = _accepting(request, request_check(client, request))
    checked, now, priority, workflows = (
        accepting.checked,
        accepting.now,
        accepting.priority,
        accepting.workflows,
    )
    # Inline recipients: upserted in this transaction once the request is known to be valid
    # (their row locks are then held only for the recipients' read and the render check).
    if request.profiles:
        recipients_upsert_inline(client=client, profiles=request.profiles)
    if request.topic is None:  # a topic's subscribers are read (and checked) by fanout.py
        checked = recipients_check(client, request, checked)
    template, recipients = checked.template, checked.recipients
    # Built first and inserted with its response: its id (a UUID) is known before the INSERT.
    notification = Notification(
        client=client,
        template=template,
        template_version=checked.version,
        variables=request.variables,
        channels=checked.channels,
        fallback=checked.fallback,
        priority=priority,
        category=request.category or template.category,
        send_at=request.send_at,
        send_time=BEST_TIME if request.best_time else "",
        best_time_holdout=request.best_time_holdout,
        idempotency_key=request.idempotency_key,
        request_hash=request.fingerprint(),
        recipient_count=len(recipients),
        skipped=[{"recipient": r, "reason": UNKNOWN_RECIPIENT} for r in checked.unknown],
        throttle=workflows.throttle.as_json() if workflows.throttle else None,
        escalation=[step.as_json() for step in request.escalation],
        digest=workflows.digest_json(),
    )
    if request.topic is not None:  # the fan-out's chunks apply the workflows (fanout.py)
        return fan_out_accept(
            notification=notification,
            version=checked.version,
            topic_key=request.topic,
            exclude=request.exclude,
            workflows=workflows,
        )

    def suppressed(recipient: Recipient, channel: str) -> bool:
        return (recipient.pk, channel) in checked.suppressed

    built = deliveries_build(
        notification=notification,
        recipients=recipients,
        workflows=workflows,
        suppressed=suppressed,
        slots=slots,
        now=now,
    )
    notes = None
    if request.best_time:  # one more statement: the recipients' engagement by hour
        plan = send_times_plan(
            recipients=recipients,
            template_key=template.key,
            holdout=request.best_time_holdout,
            now=now,
        )
        notes = send_times_apply(deliveries=built.deliveries, plan=plan, now=now)
    notification.response = _accepted_body(notification, recipients, built.deliveries)
    notification_insert(notification=notification, deliveries=built.deliveries, notes=notes)
    deliveries_counted(notification=notification, built=built)
    return dict(notification.response)


def _accepted_body(
    notification: Notification, recipients: Sequence[Recipient], deliveries: Sequence[Delivery]
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(notification.id), "status": "accepted"}
    best_time = notification.send_time == BEST_TIME
    if best_time:
        body["send_at"] = BEST_TIME
    if len(recipients) == 1:
        body["deliveries"] = [
            *(delivery_summary(d, best_time=best_time) for d in deliveries),
            *notification_skipped_deliveries(notification=notification),
        ]
    if notification.skipped:
        body["skipped"] = list(notification.skipped)
    return body


@transaction.atomic
def notification_cancel(*, notification: Notification) -> list[Delivery]:
    """Cancel every delivery not yet handed to a provider (and a fan-out's deliveries still to
    come). Returns the cancelled ones."""
    fan_out_stop(notification=notification)
    deliveries = list(
        # From the manager, not `notification.deliveries`: a prefetched notification's would join
        # (nullable) relations that FOR UPDATE cannot lock.
        Delivery.objects.select_for_update()
        .filter(notification=notification, status__in=CANCELLABLE)
        .order_by("id")
    )
    cancelled = deliveries_cancel(deliveries, reason="cancelled by client")
    # Digest items leave their open window (an empty one is not sent).
    cancelled += digest_items_cancel(notification=notification, reason="cancelled by client")
    # In this transaction: the outbound webhooks' `notification.cancelled` commits with it.
    notification_cancelled.send(sender=Notification, notification=notification, cancelled=cancelled)
    return cancelled
