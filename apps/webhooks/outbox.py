"""The outbox: the receivers of the lower apps' signals write one WebhookMessage per event and
subscribed endpoint, inside the transaction of the change (the lifecycle's status write, the
cancel, the unsubscribe), and publish after commit. A crash between the commit and the publish
loses nothing: the beat sweep (dispatch.py) finds the rows still due. The signals run each
receiver in a savepoint (apps.core.signals): whatever fails here is logged and counted
(notifier_events_dropped), never undoing the change it announces.

Per batch of changes: nothing when no client has an enabled endpoint (presence.py: one Redis
GET), else one SELECT of the enabled endpoints of the clients concerned (through the recipients'
client ids), then, only when there are, the recipients' ids and one bulk INSERT."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core import metrics
from apps.deliveries.models import Notification
from apps.deliveries.signals import DeliveryChange
from apps.recipients.models import Recipient, RecipientEvent
from apps.webhooks import events
from apps.webhooks.models import EventType, WebhookEndpoint, WebhookMessage
from apps.webhooks.presence import clients_with_endpoints
from apps.webhooks.publish import messages_publish_on_commit

logger = logging.getLogger(__name__)


def _live_endpoints(clients: QuerySet[Any] | Iterable[int]) -> list[WebhookEndpoint]:
    if not isinstance(clients, QuerySet):
        known = clients_with_endpoints()
        if known is not None and not known.intersection(clients):
            return []
    return list(
        WebhookEndpoint.objects.filter(enabled=True, client_id__in=clients).only(
            "id", "client_id", "events", "include_content"
        )
    )


def messages_write(rows: Sequence[WebhookMessage]) -> None:
    """Insert the messages (one statement) and publish them after commit. In a savepoint: a
    failure here is logged and costs these webhooks, never the change they announce."""
    if not rows:
        return
    try:
        with transaction.atomic():
            WebhookMessage.objects.bulk_create(rows)
    except DatabaseError:
        logger.exception("webhook messages not written", extra={"count": len(rows)})
        metrics.events_dropped(receiver="webhooks.outbox", count=len(rows))
        return
    messages_publish_on_commit([m.pk for m in rows])


def message_new(
    endpoint: WebhookEndpoint, *, event_id: str, type_: str, at: dt.datetime, data: dict[str, Any]
) -> WebhookMessage:
    now = timezone.now()
    return WebhookMessage(
        endpoint=endpoint,
        event_id=event_id,
        type=type_,
        payload=events.envelope(event_id=event_id, type_=type_, at=at, data=data),
        next_attempt_at=now,
        dispatched_at=now,
    )


def outbox_on_deliveries_changed(
    sender: object, *, changes: Sequence[DeliveryChange], **_: Any
) -> None:
    """`delivery.<status>` for each change, to each subscribed endpoint of its client."""
    if clients_with_endpoints() == frozenset():
        return  # no endpoint anywhere (presence.py; usually known before the call: nobody_known)
    recipient_ids = {c.recipient_id for c in changes}
    clients = Recipient.objects.filter(id__in=recipient_ids).values("client_id")
    endpoints = _live_endpoints(clients)
    if not endpoints:
        return
    recipients = {
        r.pk: r
        for r in Recipient.objects.filter(id__in=recipient_ids).only(
            "id", "client_id", "external_id", "email", "phone"
        )
    }
    variables: dict[Any, Any] = {}
    if any(e.include_content for e in endpoints):
        variables = dict(
            Notification.objects.filter(id__in={c.notification_id for c in changes}).values_list(
                "id", "variables"
            )
        )
    by_client: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_client.setdefault(endpoint.client_id, []).append(endpoint)
    rows = []
    for change in changes:
        recipient = recipients.get(change.recipient_id)
        if recipient is None:
            continue
        type_ = f"delivery.{change.status}"
        facts = events.RecipientFacts(recipient.external_id, recipient.email, recipient.phone)
        event_id = events.event_id_new()
        for endpoint in by_client.get(recipient.client_id, []):
            if type_ in endpoint.events:
                data = events.delivery_data(
                    change,
                    facts,
                    include_content=endpoint.include_content,
                    variables=variables.get(change.notification_id),
                )
                rows.append(
                    message_new(endpoint, event_id=event_id, type_=type_, at=change.at, data=data)
                )
    messages_write(rows)


def outbox_on_notification_cancelled(
    sender: object, *, notification: Notification, cancelled: Sequence[Any], **_: Any
) -> None:
    """`notification.cancelled`, when the cancel stopped at least one delivery."""
    if not cancelled:
        return
    type_ = EventType.NOTIFICATION_CANCELLED.value
    endpoints = [e for e in _live_endpoints([notification.client_id]) if type_ in e.events]
    if not endpoints:
        return
    data = events.cancelled_data(
        notification_id=notification.pk, cancelled=[d.pk for d in cancelled]
    )
    event_id, now = events.event_id_new(), timezone.now()
    messages_write(
        [message_new(e, event_id=event_id, type_=type_, at=now, data=data) for e in endpoints]
    )


RECIPIENT_TYPES = {
    RecipientEvent.Kind.UNSUBSCRIBED: EventType.RECIPIENT_UNSUBSCRIBED,
    RecipientEvent.Kind.PREFERENCES_UPDATED: EventType.RECIPIENT_PREFERENCES_UPDATED,
}


def outbox_on_recipient_event(sender: object, *, event: RecipientEvent, **_: Any) -> None:
    """`recipient.unsubscribed` / `recipient.preferences_updated`, in the recording transaction."""
    type_ = RECIPIENT_TYPES[RecipientEvent.Kind(event.kind)].value
    recipient = event.recipient
    endpoints = [e for e in _live_endpoints([recipient.client_id]) if type_ in e.events]
    if not endpoints:
        return
    data = events.recipient_data(
        external_id=recipient.external_id,
        category=event.category,
        channel=event.channel,
        source=event.source,
    )
    event_id = events.event_id_new()
    messages_write(
        [
            message_new(e, event_id=event_id, type_=type_, at=event.created_at, data=data)
            for e in endpoints
        ]
    )
