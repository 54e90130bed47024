"""Notifications to a topic: accepted at once, then fanned out to the subscribers by a worker.

The request saves the notification and a `FanOut` row and answers 202 with the expected count.
The worker (`deliveries.fan_out`, on the maintenance queue) walks the subscribers in recipient
id order, FANOUT_CHUNK_SIZE per transaction: each chunk's deliveries are built as a request's
for listed recipients are (building.py: preferences, suppressions, quiet hours, caps; the
throttle, the digest, fallback and the escalation steps the notification stored when it was
accepted), are published when it commits, and move the cursor in the same commit. A throttle
slot taken by a chunk that rolls back is given back; one taken by a chunk whose worker was
killed stays held by the notification, and the resumed chunk takes it over. A run works for
FANOUT_SLICE_SECONDS, then queues its continuation (other maintenance work runs between), and
while the channel queues are past QUEUE_DEPTH_LIMIT it waits instead of failing. A run that
died (SIGKILL, a lost message) leaves its row unmoved: `fan_outs_resume` (beat) queues it
again after FANOUT_STALL_SECONDS, and it goes on after the last committed chunk.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.deliveries.backpressure import queue_depth
from apps.deliveries.building import Workflows, deliveries_build, deliveries_counted
from apps.deliveries.lifecycle import deliveries_insert, notification_insert
from apps.deliveries.models import Delivery, DeliveryStatus, FanOut, Notification
from apps.deliveries.queueing import publish_sends_after_commit, request_path, task_publish
from apps.deliveries.request_checks import variants_render_check
from apps.deliveries.throttles import Slots, throttle_rendered_key, throttle_slots
from apps.recipients.models import Recipient
from apps.recipients.selectors import recipient_address, suppressions_among
from apps.templates.models import TemplateVersion
from apps.topics.selectors import topic_get, topic_subscribers
from notifier.channels import spec
from notifier.queues import MAINTENANCE_QUEUE

logger = logging.getLogger(__name__)

FAN_OUT_TASK = "deliveries.fan_out"
# Subscriber locales whose variants are rendered before the 202 (beyond them: at send time).
RENDER_CHECK_LOCALES = 20


class Step(enum.StrEnum):
    DONE = "done"  # every subscriber reached (or the topic is gone, or it was cancelled)
    MORE = "more"  # the slice's time is up: a continuation is queued
    WAIT = "wait"  # backpressure: a continuation is queued for later
    SUPERSEDED = "superseded"  # the resume sweep queued a newer run: this one stops


def fan_out_accept(
    *,
    notification: Notification,
    version: TemplateVersion,
    topic_key: str,
    exclude: Sequence[str],
    workflows: Workflows,
) -> dict[str, Any]:
    """In the caller's transaction: save the notification (unsaved, its channels validated, its
    workflows stored) and its fan-out, and queue the worker after commit. Returns the 202 body.
    What the chunks could only fail on later is the caller's 400 now: the throttle's key with
    these variables, and a render of each variant (the digest's shape when one applies)."""
    topic = topic_get(client=notification.client, key=topic_key)
    if topic is None:
        raise InvalidInput(
            f"Unknown topic {topic_key!r}.", fields={"topic": [f"unknown topic {topic_key!r}"]}
        )
    exclude = list(dict.fromkeys(exclude))
    subscribers = topic_subscribers(topic_id=topic.pk, exclude=exclude)
    if workflows.throttle is not None:
        throttle_rendered_key(workflows.throttle, notification.variables)
    _render_check(notification, version, subscribers, workflows)
    count = subscribers.count()
    expected = count * len(notification.channels)
    notification.recipient_count = count
    notification.response = {
        "id": str(notification.id),
        "status": "accepted",
        "recipients": "fan-out",
        "topic": topic.key,
        "expected": expected,
    }
    notification_insert(notification=notification, deliveries=[])
    FanOut.objects.create(
        notification=notification,
        topic=topic,
        topic_key=topic.key,
        exclude=exclude,
        expected=expected,
        finished_at=None if count else timezone.now(),
    )
    if count:
        notification_id = str(notification.id)
        # On a request's path (request_publishes) one short try: a hung broker must not hold
        # the 202 for the retry policy's connect timeouts; the resume sweep queues it later.
        fail_fast = request_path()
        transaction.on_commit(lambda: _publish_after_commit(notification_id, fail_fast=fail_fast))
    return dict(notification.response)


def _render_check(
    notification: Notification, version: TemplateVersion, subscribers: Any, workflows: Workflows
) -> None:
    """The caller's 400 now, not dead letters later: render each variant one subscriber of each
    locale (up to RENDER_CHECK_LOCALES of them) will get, escalation channels included, as a
    digest when one applies (as recipients_check does for listed recipients)."""
    locales = list(
        subscribers.order_by().values_list("locale", flat=True).distinct()[:RENDER_CHECK_LOCALES]
    )
    samples = [
        sample
        for locale in locales
        if (sample := subscribers.filter(locale=locale).first()) is not None
    ]
    variants_render_check(
        version=version,
        channels=[*notification.channels, *notification.fallback, *workflows.escalated_channels()],
        variables=notification.variables,
        digest=workflows.digest,
        samples=samples,
    )


def fan_out_publish(
    notification_id: str,
    *,
    countdown: float | None = None,
    resumed: bool = False,
    token: str = "",
    fail_fast: bool = False,
) -> None:
    """Queue a run of the fan-out worker holding `token` (a run whose token is no longer the
    row's exits; runs take the row's lock and start after its cursor). Published as send
    messages are (`task_publish`): `fail_fast` on a request's path."""
    kwargs: dict[str, Any] = {"resumed": True} if resumed else {}
    if token:
        kwargs["token"] = token
    task_publish(
        FAN_OUT_TASK,
        queue=MAINTENANCE_QUEUE,
        args=[notification_id],
        kwargs=kwargs,
        countdown=countdown,
        fail_fast=fail_fast,
    )


def _publish_after_commit(
    notification_id: str,
    *,
    countdown: float | None = None,
    resumed: bool = False,
    token: str = "",
    fail_fast: bool = False,
) -> None:
    try:
        fan_out_publish(
            notification_id,
            countdown=countdown,
            resumed=resumed,
            token=token,
            fail_fast=fail_fast,
        )
    except Exception as exc:  # committed: the resume sweep queues it once the broker is back
        logger.warning(
            "fan-out publish failed; left to the resume sweep: %s: %s",
            type(exc).__name__,
            exc,
            extra={"notification_id": notification_id},
        )


def _backpressured() -> bool:
    try:
        return queue_depth() > int(settings.QUEUE_DEPTH_LIMIT)
    except redis.RedisError:  # the broker cannot tell: wait for it, as the API does
        return True


def fan_out_run(
    *,
    notification_id: str,
    slice_seconds: float | None = None,
    resumed: bool = False,
    token: str = "",
) -> Step:
    """Create the next chunks of deliveries for this fan-out for one slice of time, then queue
    the continuation (now, or after a pause while the queues are too deep). A `resumed` run
    (queued by the sweep) first publishes the last committed chunk's `queued` deliveries again.
    A run whose `token` is no longer the fan-out's (the sweep queued a newer run) or whose
    fan-out is finished stops without sending anything or queueing a continuation."""
    budget = settings.FANOUT_SLICE_SECONDS if slice_seconds is None else slice_seconds
    deadline = time.monotonic() + budget
    live = _live(notification_id, token)
    if live is not Step.MORE:
        return live
    if resumed:
        _republish_last_chunk(notification_id)
    while True:
        if _backpressured():
            live = _live(notification_id, token)  # no waiting on behalf of a finished fan-out
            if live is not Step.MORE:
                return live
            _touch(notification_id)  # waiting, not stalled: the sweep leaves it alone
            _publish_after_commit(
                notification_id, countdown=settings.FANOUT_BACKPRESSURE_DELAY, token=token
            )
            return Step.WAIT
        step = fan_out_chunk(notification_id=notification_id, token=token)
        if step is not Step.MORE:
            return step
        if time.monotonic() >= deadline:
            _publish_after_commit(notification_id, token=token)
            return Step.MORE


def _live(notification_id: str, token: str) -> Step:
    """MORE while this run may go on; DONE if the fan-out is finished, SUPERSEDED if the sweep
    gave it a newer run."""
    row = (
        FanOut.objects.filter(notification_id=notification_id)
        .values_list("finished_at", "run_token")
        .first()
    )
    if row is None or row[0] is not None:
        return Step.DONE
    return Step.MORE if row[1] == token else Step.SUPERSEDED


def _republish_last_chunk(notification_id: str) -> None:
    """The dead run may have committed its last chunk and been killed before publishing it: its
    rows are `queued` with neither message nor ledger entry (those are written together, after
    the commit), which the reconciler would find only RECONCILE_AFTER_SECONDS later. Publish
    them again now; a message that did get through becomes a duplicate, which the send claim
    drops."""
    fan = FanOut.objects.filter(notification_id=notification_id).first()
    if fan is None:
        return
    items = [
        (str(pk), channel, priority)
        for pk, channel, priority in Delivery.objects.filter(
            notification_id=notification_id,
            status=DeliveryStatus.QUEUED,
            recipient_id__gt=fan.chunk_from,
            recipient_id__lte=fan.after_recipient,
        ).values_list("pk", "channel", "priority")
    ]
    publish_sends_after_commit(items)


def _touch(notification_id: str) -> None:
    FanOut.objects.filter(notification_id=notification_id, finished_at__isnull=True).update(
        updated_at=timezone.now()
    )


def fan_out_chunk(*, notification_id: str, token: str = "") -> Step:
    """One transaction: the next FANOUT_CHUNK_SIZE subscribers' deliveries and the cursor past
    them. The row lock makes concurrent runs of one fan-out take turns. The throttle slots the
    chunk takes are given back if its transaction does not commit (the chunk is run again)."""
    with throttle_slots() as slots, transaction.atomic():
        return _chunk(notification_id, token, slots)


def _chunk(notification_id: str, token: str, slots: Slots) -> Step:
    fan = (
        FanOut.objects.select_for_update(of=("self",))
        .select_related("notification__template", "notification__client")
        .filter(notification_id=notification_id, finished_at__isnull=True)
        .first()
    )
    if fan is None:
        return Step.DONE
    if fan.run_token != token:  # checked under the lock: the sweep's newer run goes on alone
        return Step.SUPERSEDED
    now = timezone.now()
    recipients = _next_subscribers(fan)
    if recipients:
        created = _create_deliveries(fan.notification, recipients, slots=slots, now=now)
        fan.chunk_from, fan.after_recipient = fan.after_recipient, recipients[-1].pk
        fan.created += created
    else:  # only an empty chunk ends it: a run killed while publishing the last (partial)
        fan.finished_at = now  # chunk leaves it unfinished, so the sweep republishes that chunk
    fan.save(
        update_fields=["chunk_from", "after_recipient", "created", "finished_at", "updated_at"]
    )
    return Step.DONE if fan.finished_at else Step.MORE


def _next_subscribers(fan: FanOut) -> list[Recipient]:
    if fan.topic_id is None:  # the topic was deleted: nobody left to reach
        return []
    rows = (
        topic_subscribers(topic_id=fan.topic_id, exclude=fan.exclude)
        .filter(pk__gt=fan.after_recipient)
        .select_related("preference")
    )
    notification = fan.notification
    escalated = Workflows.stored(notification).escalated_channels()
    channels = [*notification.channels, *notification.fallback, *escalated]
    if any(spec(c).per_device for c in channels):  # devices: only to reach them
        rows = rows.prefetch_related("devices")
    return list(rows[: settings.FANOUT_CHUNK_SIZE])


def _create_deliveries(
    notification: Notification, recipients: list[Recipient], *, slots: Slots, now: dt.datetime
) -> int:
    """The chunk's deliveries, built as a request's for listed recipients are (building.py) with
    the workflows the notification stored. Returns how many on the requested channels."""
    workflows = Workflows.stored(notification)
    escalated = workflows.escalated_channels()
    # Suppressions of the fallback and escalation channels too: one query for the chunk.
    listed = suppressions_among(
        client_id=notification.client_id,
        recipients=recipients,
        channels=[*notification.channels, *notification.fallback, *escalated],
    )

    def suppressed(recipient: Recipient, channel: str) -> bool:
        return (channel, recipient_address(recipient=recipient, channel=channel)) in listed

    built = deliveries_build(
        notification=notification,
        recipients=recipients,
        workflows=workflows,
        suppressed=suppressed,
        slots=slots,
        now=now,
        lenient_digest_keys=True,  # no caller to answer 400: that subscriber is sent singly
    )
    deliveries_insert(deliveries=built.deliveries)
    deliveries_counted(notification=notification, built=built)
    return len(recipients) * len(notification.channels)


def fan_out_stop(*, notification: Notification) -> None:
    """A cancelled notification creates no more deliveries: the UPDATE waits for the chunk in
    flight (its row lock), so what the caller reads next includes that chunk's deliveries."""
    FanOut.objects.filter(notification=notification, finished_at__isnull=True).update(
        finished_at=timezone.now()
    )


def fan_outs_resume(*, now: dt.datetime | None = None) -> int:
    """Queue again every unfinished fan-out that has not moved for FANOUT_STALL_SECONDS (its
    worker died, or its message was lost). Returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.FANOUT_STALL_SECONDS)
    stalled = [
        str(pk)
        for pk in FanOut.objects.filter(
            finished_at__isnull=True, updated_at__lt=cutoff
        ).values_list("notification_id", flat=True)[:1000]
    ]
    for notification_id in stalled:
        # A new token: the run presumed dead, if only slow, exits at its next step.
        token = uuid.uuid4().hex
        FanOut.objects.filter(notification_id=notification_id, finished_at__isnull=True).update(
            run_token=token, updated_at=timezone.now()
        )  # touched too: the next sweep gives this run its full time before queueing more
        _publish_after_commit(notification_id, resumed=True, token=token)
    return len(stalled)
