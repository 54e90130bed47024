"""One attempt at sending a delivery: claim, re-check, render, call the provider, record."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import metrics
from apps.deliveries.fallback import fallback_after_failure
from apps.deliveries.guards import delivery_peek, delivery_wait, gate_open
from apps.deliveries.models import (
    CLAIMABLE,
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryStatus,
)
from apps.deliveries.push import provider_send
from apps.deliveries.queueing import publish_sends
from apps.deliveries.rules import delivery_decide
from apps.deliveries.services import event_record
from apps.recipients.selectors import recipient_context
from apps.templates.selectors import variant_pick
from notifier.errors import DeliveryFailure, PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage, SendResult
from notifier.rendering import render
from notifier.retry import RetryPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptOutcome:
    """What happened: `sent`, `retrying` (with `retry_in`), `dead`, `skipped`, `deferred`,
    `waiting` (rate limit or breaker: not an attempt; back in `retry_in`), or `not_claimed`
    (someone else has it, or it is finished)."""

    result: str
    retry_in: float | None = None


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.RETRY_BASE_SECONDS, cap_seconds=settings.RETRY_CAP_SECONDS
    )


def delivery_claim(*, delivery_id: str) -> bool:
    """Take the delivery for one attempt with a single conditional update."""
    claimed = Delivery.objects.filter(id=delivery_id, status__in=CLAIMABLE).update(
        status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    return claimed == 1


def _address(delivery: Delivery) -> str:
    recipient = delivery.recipient
    if delivery.channel == "email":
        return recipient.email
    if delivery.channel == "sms":
        return recipient.phone
    return recipient.external_id


def delivery_message(*, delivery: Delivery) -> OutboundMessage:
    """Render the delivery's template version for its recipient and channel."""
    notification = delivery.notification
    recipient = delivery.recipient
    variant = variant_pick(
        version=notification.template_version, channel=delivery.channel, locale=recipient.locale
    )
    if variant is None:
        raise PermanentFailure(f"template has no {delivery.channel} variant")
    rendered = render(
        subject=variant.subject,
        title=variant.title,
        body=variant.body,
        html=variant.html if delivery.channel == "email" else "",
        variables=notification.variables,
        recipient=recipient_context(recipient=recipient),
    )
    return OutboundMessage(
        delivery_id=str(delivery.id),
        channel=delivery.channel,
        to=_address(delivery),
        subject=rendered.subject,
        title=rendered.title,
        body=rendered.body,
        html=rendered.html,
        data={"notification_id": str(notification.id), "category": notification.category},
    )


def _recheck(delivery: Delivery, now: dt.datetime) -> AttemptOutcome | None:
    """Preferences may have changed since creation: apply them again just before sending."""
    decision = delivery_decide(
        recipient=delivery.recipient,
        channel=delivery.channel,
        category=delivery.notification.category,
        priority=delivery.priority,
        now=now,
    )
    if decision.action == "send":
        return None
    with transaction.atomic():
        delivery.attempts = F("attempts") - 1  # nothing was attempted
        delivery.reason = decision.reason
        if decision.action == "skip":
            delivery.status = DeliveryStatus.SKIPPED
        else:
            delivery.status = DeliveryStatus.DEFERRED
            delivery.not_before = decision.not_before
        delivery.save(update_fields=["attempts", "reason", "status", "not_before", "updated_at"])
        event_record(delivery, delivery.status, decision.reason)
        if decision.action == "skip":
            metrics.delivery_skipped(delivery=delivery, reason=decision.reason)
        fallback_after_failure(delivery=delivery)
    return AttemptOutcome(str(delivery.status))


def delivery_attempt(*, delivery_id: str) -> AttemptOutcome:
    """Claim the delivery and make one attempt; schedule a retry or a dead letter on failure."""
    # Rate limit and breaker first: waiting on them is not an attempt (guards.py).
    peeked = delivery_peek(delivery_id=delivery_id)
    if peeked is None:
        return AttemptOutcome("not_claimed")
    gate = gate_open(channel=peeked[0])
    if gate.provider is None:
        delay = delivery_wait(
            delivery_id=delivery_id, channel=peeked[0], priority=peeked[1], wait=gate.wait
        )
        return AttemptOutcome("waiting", retry_in=delay)
    if not delivery_claim(delivery_id=delivery_id):
        gate.release()
        return AttemptOutcome("not_claimed")
    # The preference comes along (one query fewer per send): the re-check reads it.
    delivery = Delivery.objects.select_related(
        "recipient__preference", "notification__template_version"
    ).get(id=delivery_id)
    now = timezone.now()
    skipped = _recheck(delivery, now)
    if skipped is not None:
        gate.release()
        return skipped
    provider = gate.provider
    metrics.attempt_started(delivery=delivery, provider=provider.name)
    started = timezone.now()
    clock = time.perf_counter()
    result: SendResult | None = None
    failure: DeliveryFailure | None = None
    try:
        result = provider_send(
            provider=provider, delivery=delivery, message=delivery_message(delivery=delivery)
        )
    except DeliveryFailure as exc:
        failure = exc
    latency_ms = int((time.perf_counter() - clock) * 1000)
    gate.record(failure)
    metrics.provider_called(
        provider=provider.name, outcome=_outcome(failure), seconds=latency_ms / 1000
    )
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            provider=provider.name,
            started_at=started,
            finished_at=timezone.now(),
            outcome=_outcome(failure),
            response_code=result.status_code
            if result
            else failure.status_code
            if failure
            else None,
            latency_ms=latency_ms,
            error=(f"{failure.reason}: {failure.detail}" if failure else "")[:500],
        )
        delivery.provider = provider.name
        if result is not None:
            return _mark_sent(delivery, result)
        if failure is None:  # pragma: no cover - send() either returned or raised
            raise RuntimeError("provider returned no result")
        if isinstance(failure, TransientFailure) and delivery.attempts < delivery.max_attempts:
            return _mark_retrying(delivery, failure)
        return _mark_dead(delivery, failure)


def _outcome(failure: DeliveryFailure | None) -> str:
    if failure is None:
        return Attempt.Outcome.SENT
    if isinstance(failure, TransientFailure):
        return Attempt.Outcome.TRANSIENT
    return Attempt.Outcome.PERMANENT


def _settle(delivery: Delivery, fields: list[str]) -> bool:
    """Write the attempt's outcome, unless a provider report overtook the send: a webhook
    (delivered, opened, a bounce) can arrive before this commit. True if written."""
    values = {name: getattr(delivery, name) for name in fields}
    values["updated_at"] = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING)
    return claimed.update(**values) == 1


def _overtaken(delivery: Delivery, result: SendResult | None) -> AttemptOutcome:
    """The provider already reported on this delivery, so it has it: keep the reported status
    (no retry, no dead letter), and record who sent it."""
    current = Delivery.objects.select_for_update().get(pk=delivery.pk)
    current.provider = delivery.provider
    fields = ["provider", "updated_at"]
    if result is not None:
        current.sent_at = timezone.now()
        current.provider_message_id = result.provider_message_id[:200]
        fields += ["sent_at", "provider_message_id"]
    current.save(update_fields=fields)
    event_record(
        current,
        current.status,
        f"attempt {delivery.attempts} finished after {current.provider} reported {current.status}",
    )
    if result is not None:
        metrics.delivery_sent(delivery=current)
    return AttemptOutcome(str(current.status))


def _mark_sent(delivery: Delivery, result: SendResult) -> AttemptOutcome:
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.provider_message_id = result.provider_message_id[:200]
    delivery.reason = ""
    delivery.next_attempt_at = None
    fields = ["status", "sent_at", "provider", "provider_message_id", "reason", "next_attempt_at"]
    if delivery.channel == "push":
        fields.append("push_accepted")  # the devices that have it (push.py)
    if not _settle(delivery, fields):
        return _overtaken(delivery, result)
    event_record(delivery, DeliveryStatus.SENT, f"accepted by {delivery.provider}")
    metrics.delivery_sent(delivery=delivery)
    return AttemptOutcome("sent")


def _mark_retrying(delivery: Delivery, failure: TransientFailure) -> AttemptOutcome:
    delay = retry_policy().delay(delivery.attempts, retry_after=failure.retry_after)
    delivery.status = DeliveryStatus.RETRYING
    delivery.next_attempt_at = timezone.now() + dt.timedelta(seconds=delay)
    delivery.reason = failure.reason[:200]
    if not _settle(delivery, ["status", "next_attempt_at", "reason", "provider"]):
        return _overtaken(delivery, None)
    event_record(
        delivery,
        DeliveryStatus.RETRYING,
        f"attempt {delivery.attempts} failed ({failure.reason}); next in {delay:.1f}s",
    )
    item = [(str(delivery.id), delivery.channel, delivery.priority)]
    transaction.on_commit(lambda: publish_sends(item, countdown=delay))
    metrics.delivery_retrying(delivery=delivery, reason=failure.reason, delay=delay)
    return AttemptOutcome("retrying", retry_in=delay)


def _mark_dead(delivery: Delivery, failure: DeliveryFailure) -> AttemptOutcome:
    delivery.status = DeliveryStatus.DEAD
    delivery.reason = failure.reason[:200]
    delivery.next_attempt_at = None
    if not _settle(delivery, ["status", "reason", "next_attempt_at", "provider"]):
        return _overtaken(delivery, None)
    kind = "permanent failure" if isinstance(failure, PermanentFailure) else "retries exhausted"
    DeadLetter.objects.create(
        delivery=delivery,
        channel=delivery.channel,
        reason=failure.reason[:200],
        last_error=f"{kind}: {failure.detail}"[:2000],
        attempts=delivery.attempts,
    )
    event_record(delivery, DeliveryStatus.DEAD, f"{kind}: {failure.reason}")
    metrics.delivery_dead(
        delivery=delivery, reason=failure.reason, permanent=kind != "retries exhausted"
    )
    fallback_after_failure(delivery=delivery)
    return AttemptOutcome("dead")
