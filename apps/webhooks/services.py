"""Writes for webhook endpoints: create, change, delete, rotate the secret, send a test ping,
replay dead letters. Each validates the URL (addresses.py) before anything is saved."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.clients.models import ApiClient
from apps.core.errors import Conflict, InvalidInput, NotFound
from apps.webhooks import events
from apps.webhooks.addresses import UnsafeUrl, url_check_at_registration
from apps.webhooks.alerts import endpoint_enable
from apps.webhooks.models import EventType, MessageStatus, WebhookEndpoint, WebhookMessage
from apps.webhooks.outbox import message_new, messages_write
from apps.webhooks.presence import endpoints_changed
from apps.webhooks.publish import messages_publish_on_commit
from apps.webhooks.signing import secret_new

# One bulk replay re-queues at most this many dead messages; call again for the rest.
BULK_REPLAY_LIMIT = 1000


def url_validate(url: str) -> str:
    """The URL as stored (its host as IDNA A-labels); InvalidInput naming `url` when it may
    not be sent to."""
    try:
        return url_check_at_registration(url)
    except UnsafeUrl as exc:
        raise InvalidInput(str(exc), fields={"url": [str(exc)]}) from None


@transaction.atomic
def endpoint_create(
    *, client: ApiClient, url: str, events_: Sequence[str], description: str, include_content: bool
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once)."""
    url = url_validate(url)
    endpoints_changed()
    return WebhookEndpoint.objects.create(
        client=client,
        url=url,
        events=list(dict.fromkeys(events_)),
        description=description,
        include_content=include_content,
        secret=secret_new(),
    )


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, changes: dict[str, Any]) -> WebhookEndpoint:
    """Change `url`, `events`, `description`, `include_content` or `enabled` (enabling again
    clears a disable by the service, and its failing streak)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "url" in changes:
        url = url_validate(changes["url"])
        if url != locked.url:  # a new receiver: the old one's failing streak is not its own
            locked.failing_since = None
        locked.url = url
    if "events" in changes:
        locked.events = list(dict.fromkeys(changes["events"]))
    for name in ("description", "include_content"):
        if name in changes:
            setattr(locked, name, changes[name])
    if changes.get("enabled") is True and not locked.enabled:
        endpoint_enable(endpoint=locked)
        endpoints_changed()
    elif changes.get("enabled") is False and locked.enabled:
        locked.enabled = False
        endpoints_changed()
    locked.save()
    return locked


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its messages and attempt log."""
    with transaction.atomic():
        endpoints_changed()
        endpoint.delete()


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> str:
    """A new secret; the old one keeps signing beside it for WEBHOOKS_SECRET_OVERLAP_SECONDS.
    Returns the new secret (shown once). Only one old secret is kept: rotating twice within
    the overlap drops the first one at once (docs/webhooks.md)."""
    now = now or timezone.now()
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = now + dt.timedelta(
        seconds=settings.WEBHOOKS_SECRET_OVERLAP_SECONDS
    )
    locked.secret = secret_new()
    locked.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return locked.secret


@transaction.atomic
def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookMessage:
    """Queue a `ping` message to the enabled endpoint (Conflict when it is disabled)."""
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it before testing it.")
    type_ = EventType.PING.value
    message = message_new(
        endpoint,
        event_id=events.event_id_new(),
        type_=type_,
        at=timezone.now(),
        data=events.ping_data(endpoint_id=endpoint.pk),
    )
    messages_write([message])
    return message


def _replay_values(replayed_by: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "state": MessageStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "dispatched_at": now,
        "replayed_at": now,
        "replayed_by": replayed_by[:150],
    }


@transaction.atomic
def message_replay(*, endpoint: WebhookEndpoint, event_id: str, replayed_by: str) -> WebhookMessage:
    """Queue a dead message again for a fresh series of attempts (same event id). NotFound
    for an unknown id, Conflict when it is not dead or the endpoint is disabled."""
    message = (
        WebhookMessage.objects.select_for_update()
        .filter(endpoint=endpoint, event_id=event_id)
        .first()
    )
    if message is None:
        raise NotFound("No such message for this endpoint.")
    if message.state != MessageStatus.DEAD:
        raise Conflict(f"Message {event_id} is {message.state}, not dead: nothing to replay.")
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it before replaying its messages.")
    values = _replay_values(replayed_by, timezone.now())
    WebhookMessage.objects.filter(pk=message.pk).update(**values)
    messages_publish_on_commit([message.pk])
    message.refresh_from_db()
    return message


@transaction.atomic
def messages_replay(*, ids: Sequence[int], replayed_by: str) -> list[int]:
    """Replay these dead messages of enabled endpoints (the admin's action); locked rows are
    skipped. The ids replayed."""
    found = list(
        WebhookMessage.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk__in=list(ids), state=MessageStatus.DEAD, endpoint__enabled=True)
        .values_list("pk", flat=True)[:BULK_REPLAY_LIMIT]
    )
    WebhookMessage.objects.filter(pk__in=found).update(
        **_replay_values(replayed_by, timezone.now())
    )
    messages_publish_on_commit(found)
    return found
