"""One attempt at sending a delivery: claim, re-check, render, call the provider, record."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Field
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.fallback import fallback_after_failure
from apps.deliveries.guards import deliveries_peek, deliveries_wait, gate_open
from apps.deliveries.models import (
    CLAIMABLE,
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
)
from apps.deliveries.push import provider_send
from apps.deliveries.queueing import publish_sends_after_commit
from apps.deliveries.rules import delivery_decide
from apps.deliveries.services import event_record
from apps.recipients.selectors import (
    recipient_address,
    recipient_context,
    suppressions_among,
)
from apps.templates.limits import render_limits
from apps.templates.selectors import variant_pick
from notifier.errors import DeliveryFailure, PermanentFailure, TransientFailure
from notifier.logcontext import log_context_scope
from notifier.providers.base import OutboundMessage, Provider, SendResult
from notifier.rendering import RenderLimitExceeded, render, single_line
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


def deliveries_claim(*, delivery_ids: Sequence[str]) -> set[str]:
    """Take the deliveries for one attempt each (status `sending`, attempt counter + 1); a row
    another worker claimed first is no longer claimable. Returns the ids taken."""
    now = timezone.now()
    taking = {"status": DeliveryStatus.SENDING, "attempts": F("attempts") + 1, "updated_at": now}
    if len(delivery_ids) == 1:  # one conditional UPDATE
        (pk,) = delivery_ids
        claimed = Delivery.objects.filter(id=pk, status__in=CLAIMABLE).update(**taking)
        return {str(pk)} if claimed == 1 else set()
    with transaction.atomic():
        # Locked in id order, so two workers holding overlapping batches cannot deadlock.
        ids = list(
            Delivery.objects.select_for_update()
            .filter(id__in=delivery_ids, status__in=CLAIMABLE)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if ids:
            Delivery.objects.filter(id__in=ids).update(**taking)
    return {str(pk) for pk in ids}


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
    try:
        rendered = render(
            subject=variant.subject,
            title=variant.title,
            body=variant.body,
            html=variant.html if delivery.channel == "email" else "",
            variables=notification.variables,
            recipient=recipient_context(recipient=recipient),
            limits=render_limits(channel=delivery.channel),
        )
    except SoftTimeLimitExceeded:
        raise
    except DEPENDENCY_ERRORS:
        raise  # not the template's fault: the database or Redis failed under it
    except RenderLimitExceeded as exc:
        # The same template and variables would exceed them on every retry.
        raise PermanentFailure("template exceeds the render limits", detail=str(exc)) from exc
    except Exception as exc:  # rendering does no I/O: whatever fails here fails every time
        raise PermanentFailure(
            "template does not render", detail=f"{type(exc).__name__}: {exc}"[:300]
        ) from exc
    return OutboundMessage(
        delivery_id=str(delivery.id),
        channel=delivery.channel,
        to=_address(delivery),
        # A recipient's own data (say a name with a newline) can still break a line the API's
        # test render did not see: a subject is one header line, never sent raw.
        subject=single_line(rendered.subject),
        title=rendered.title,
        body=rendered.body,
        html=rendered.html,
        data={"notification_id": str(notification.id), "category": notification.category},
    )


def _suppressed_ids(deliveries: Sequence[Delivery], *, channel: str) -> set[str]:
    """The deliveries whose address is on their client's suppression list (a query per client,
    none for channels without addresses)."""
    by_client: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_client.setdefault(delivery.recipient.client_id, []).append(delivery)
    found: set[str] = set()
    for client_id, group in by_client.items():
        pairs = suppressions_among(
            client_id=client_id, recipients=[d.recipient for d in group], channels=[channel]
        )
        found.update(
            str(d.id)
            for d in group
            if (channel, recipient_address(recipient=d.recipient, channel=channel)) in pairs
        )
    return found


def _recheck(delivery: Delivery, now: dt.datetime, *, suppressed: bool) -> AttemptOutcome | None:
    """Preferences may have changed since creation: apply them again just before sending."""
    decision = delivery_decide(
        recipient=delivery.recipient,
        channel=delivery.channel,
        category=delivery.notification.category,
        priority=delivery.priority,
        now=now,
        suppressed=suppressed,
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
    """One attempt at one delivery (see `deliveries_attempt`)."""
    return deliveries_attempt(delivery_ids=[delivery_id])[str(delivery_id)]


def deliveries_attempt(*, delivery_ids: Sequence[str]) -> dict[str, AttemptOutcome]:
    """One attempt at each of these deliveries (a send task's batch: publish_sends puts one
    channel and priority in a message). Claimed together, sent one after the other, recorded
    together. A duplicate or finished delivery is `not_claimed`. Outcomes by id."""
    ids = list(dict.fromkeys(str(pk) for pk in delivery_ids))
    peeked = deliveries_peek(delivery_ids=ids)
    outcomes = {pk: AttemptOutcome("not_claimed") for pk in ids if pk not in peeked}
    groups: dict[tuple[str, str], list[str]] = {}
    for pk in ids:
        if pk in peeked:
            groups.setdefault(peeked[pk], []).append(pk)
    for (channel, priority), group in groups.items():
        outcomes.update(_attempt_group(group, channel=channel, priority=priority))
    return {pk: outcomes[pk] for pk in ids}


def _attempt_group(ids: list[str], *, channel: str, priority: str) -> dict[str, AttemptOutcome]:
    # Rate limit and breaker first: waiting on them is not an attempt (guards.py).
    gate = gate_open(channel=channel, wanted=len(ids))
    if gate.provider is None:
        delay = deliveries_wait(
            delivery_ids=ids, channel=channel, priority=priority, wait=gate.wait
        )
        return dict.fromkeys(ids, AttemptOutcome("waiting", retry_in=delay))
    provider = gate.provider
    outcomes: dict[str, AttemptOutcome] = {}
    now_ids, later = ids[: gate.granted], ids[gate.granted :]
    if later:  # no token yet for these, or a probe goes first
        delay = deliveries_wait(
            delivery_ids=later, channel=channel, priority=priority, wait=gate.wait
        )
        outcomes.update(dict.fromkeys(later, AttemptOutcome("waiting", retry_in=delay)))
    claimed = deliveries_claim(delivery_ids=now_ids)
    outcomes.update({pk: AttemptOutcome("not_claimed") for pk in now_ids if pk not in claimed})
    try:
        to_send = _prepare(now_ids, claimed, channel=channel, outcomes=outcomes)
    except Exception:
        # Redis or the database failed before any provider call: give back what this batch
        # claimed and did not settle (back to `queued`, the attempt uncounted), if the database
        # still lets us, and let the task's own retry (tasks.py) or the reconciler take it.
        logger.exception("send batch interrupted before sending")
        with contextlib.suppress(Exception):
            unsettled = [pk for pk in now_ids if pk in claimed and pk not in outcomes]
            _hand_back(unsettled, channel=channel, priority=priority)
        with contextlib.suppress(Exception):
            gate.release()
        raise
    if not to_send:
        gate.release()
        return outcomes
    calls: list[_Call] = []  # sent, not yet recorded
    attempted = 0
    started = recorded = time.monotonic()
    success_untold = False  # the provider answered since the breaker was last told
    try:
        for delivery in to_send:
            call = _call(provider, delivery)
            calls.append(call)
            attempted += 1
            # The breaker hears every transient failure of the provider (not our own errors)
            # at once, and that the provider answered before the next failure and at each
            # write: a success only resets its count, telling it twice in a row changes nothing.
            opened = False
            if call.worker_error:
                pass
            elif isinstance(call.failure, TransientFailure):
                if success_untold:
                    gate.record(None)
                    success_untold = False
                opened = gate.record(call.failure)
            else:
                success_untold = True
            rest = to_send[attempted:]
            clock = time.monotonic()
            stop = bool(rest) and (
                opened or call.stop or clock - started > settings.SEND_BATCH_SECONDS
            )
            # Outcomes are written at the end, and at least every SEND_BATCH_RECORD_SECONDS on
            # the way: a worker killed mid-batch sends again only what it sent since the last
            # write.
            if not rest or stop or clock - recorded >= settings.SEND_BATCH_RECORD_SECONDS:
                if success_untold:
                    gate.record(None)
                    success_untold = False
                written, calls = calls, []
                outcomes.update(_record(written, provider=provider.name))
                recorded = time.monotonic()
            if stop:
                # The breaker opened or the batch ran out of time: the rest go back to the
                # queue, unattempted, and ask the gate again.
                outcomes.update(
                    _hand_back([str(d.id) for d in rest], channel=channel, priority=priority)
                )
                break
    except Exception:
        # Not a send (those never raise): Redis or the database failed between sends. Write
        # what was sent and hand the rest back if we still can, then let the task fail;
        # whatever stays in `sending` is the reconciler's after SEND_STUCK_AFTER_SECONDS.
        logger.exception("send batch interrupted")
        with contextlib.suppress(Exception):
            if calls:
                _record(calls, provider=provider.name)
        with contextlib.suppress(Exception):
            if to_send[attempted:]:
                _hand_back(
                    [str(d.id) for d in to_send[attempted:]], channel=channel, priority=priority
                )
        raise
    return outcomes


def _prepare(
    ids: list[str], claimed: set[str], *, channel: str, outcomes: dict[str, AttemptOutcome]
) -> list[Delivery]:
    """Load the claimed deliveries (in `ids` order) and re-check each; those that must not be
    sent now get their outcome in `outcomes`. Returns the ones to send."""
    # The preference comes along (one query fewer per send): the re-check reads it.
    rows = Delivery.objects.select_related(
        "recipient__preference", "notification__template_version"
    ).filter(id__in=claimed)
    order = {pk: i for i, pk in enumerate(ids)}
    taken = sorted(rows, key=lambda d: order[str(d.id)])
    suppressed = _suppressed_ids(taken, channel=channel)
    now = timezone.now()
    to_send: list[Delivery] = []
    for delivery in taken:
        skipped = _recheck(delivery, now, suppressed=str(delivery.id) in suppressed)
        if skipped is None:
            to_send.append(delivery)
        else:
            outcomes[str(delivery.id)] = skipped
    return to_send


@dataclass
class _Call:
    """One provider call for one delivery, kept until the batch is recorded."""

    delivery: Delivery
    started: dt.datetime
    finished: dt.datetime
    latency_ms: int
    result: SendResult | None
    failure: DeliveryFailure | None
    stop: bool = False  # the task's time is up: send no more in this batch
    worker_error: bool = False  # failed on our side, not the provider's: not the breaker's


def _call(provider: Provider, delivery: Delivery) -> _Call:
    """Render and send one delivery. Whatever goes wrong becomes a failure, so that the batch's
    other sends are still recorded; except that the database or Redis failing while rendering,
    before the provider is called, is raised: not an attempt, the batch hands the delivery back
    and the task's own retry takes it (tasks.py)."""
    with log_context_scope():
        metrics.attempt_started(delivery=delivery, provider=provider.name)
        started = timezone.now()
        clock = time.perf_counter()
        result: SendResult | None = None
        failure: DeliveryFailure | None = None
        stop = worker_error = False
        message: OutboundMessage | None = None
        try:
            message = delivery_message(delivery=delivery)
            result = provider_send(provider=provider, delivery=delivery, message=message)
        except DEPENDENCY_ERRORS as exc:
            if message is None:
                raise
            logger.exception("send failed unexpectedly")
            failure = TransientFailure("worker error", detail=repr(exc)[:300])
            worker_error = True
        except DeliveryFailure as exc:
            failure = exc
        except SoftTimeLimitExceeded:
            failure, stop, worker_error = TransientFailure("worker time limit"), True, True
        except Exception as exc:  # a bug here must not cost the batch its records
            logger.exception("send failed unexpectedly")
            failure = TransientFailure("worker error", detail=repr(exc)[:300])
            worker_error = True
        latency_ms = int((time.perf_counter() - clock) * 1000)
    metrics.provider_called(
        provider=provider.name, outcome=_outcome(failure), seconds=latency_ms / 1000
    )
    delivery.provider = provider.name
    return _Call(delivery, started, timezone.now(), latency_ms, result, failure, stop, worker_error)


def _hand_back(ids: Sequence[str], *, channel: str, priority: str) -> dict[str, AttemptOutcome]:
    """Claimed but not attempted: back to `queued` without counting an attempt, and published
    again (at once: the gate decides what happens next)."""
    if not ids:
        return {}
    with transaction.atomic():
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.QUEUED,
            attempts=F("attempts") - 1,
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        items = [(pk, channel, priority) for pk in ids]
        transaction.on_commit(lambda: publish_sends_after_commit(items))
    return dict.fromkeys(ids, AttemptOutcome("waiting", retry_in=0.0))


def _record(calls: Sequence[_Call], *, provider: str) -> dict[str, AttemptOutcome]:
    """Write the attempts and the sent outcomes in one transaction; each failure's outcome (a
    retry, or a dead letter that may start a fallback and lock its notification) in its own,
    as a single send did, so that a batch never holds several notifications' locks at once."""
    outcomes: dict[str, AttemptOutcome] = {}
    with transaction.atomic():
        Attempt.objects.bulk_create(
            Attempt(
                delivery=c.delivery,
                number=c.delivery.attempts,
                provider=provider,
                started_at=c.started,
                finished_at=c.finished,
                outcome=_outcome(c.failure),
                response_code=c.result.status_code
                if c.result
                else c.failure.status_code
                if c.failure
                else None,
                latency_ms=c.latency_ms,
                error=(f"{c.failure.reason}: {c.failure.detail}" if c.failure else "")[:500],
            )
            for c in calls
        )
        sent = [(c.delivery, c.result) for c in calls if c.result is not None]
        if sent:
            outcomes.update(_mark_sent(sent))
    for c in calls:
        failure = c.failure
        if c.result is not None:
            continue
        if failure is None:  # pragma: no cover - send() either returned or raised
            raise RuntimeError("provider returned no result")
        delivery = c.delivery
        with transaction.atomic():
            if isinstance(failure, TransientFailure) and delivery.attempts < delivery.max_attempts:
                outcomes[str(delivery.id)] = _mark_retrying(delivery, failure)
            else:
                outcomes[str(delivery.id)] = _mark_dead(delivery, failure)
    return outcomes


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


def _mark_sent(sent: Sequence[tuple[Delivery, SendResult]]) -> dict[str, AttemptOutcome]:
    """One UPDATE for those still `sending`, one INSERT for their events; a row a provider
    report overtook keeps the reported status."""
    outcomes: dict[str, AttemptOutcome] = {}
    now = timezone.now()
    for delivery, result in sent:
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = delivery.updated_at = now
        delivery.provider_message_id = result.provider_message_id[:200]
        delivery.reason = ""
        delivery.next_attempt_at = None
    written = _settle_sent(sent[0][0].channel, [d for d, _ in sent], now=now)
    settled = [d for d, _ in sent if d.id in written]
    for delivery, result in sent:
        if delivery.id not in written:
            outcomes[str(delivery.id)] = _overtaken(delivery, result)
    if not settled:
        return outcomes
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(delivery=d, status=DeliveryStatus.SENT, detail=f"accepted by {d.provider}")
        for d in settled
    )
    for delivery in settled:
        metrics.delivery_sent(delivery=delivery)
        outcomes[str(delivery.id)] = AttemptOutcome("sent")
    return outcomes


def _settle_sent(channel: str, deliveries: Sequence[Delivery], *, now: dt.datetime) -> set[Any]:
    """Write `sent` on the deliveries still in `sending`, in one statement: the shared fields
    directly, each one's provider message id (and, for push, its devices) from a VALUES list.
    Returns the ids written. (Django's bulk_update builds a CASE per field and row: it cost
    more CPU than the sends themselves.) PostgreSQL and SQLite >= 3.35 alike."""
    meta = Delivery._meta
    table = connection.ops.quote_name(meta.db_table)

    def prep(name: str, value: Any) -> Any:
        field = meta.get_field(name)
        assert isinstance(field, Field)  # noqa: S101 - a concrete column of ours
        return field.get_db_prep_save(value, connection)

    per_row = ["provider_message_id"] + (["push_accepted"] if channel == "push" else [])
    placeholders = ", ".join(["(" + ", ".join(["%s"] * (1 + len(per_row))) + ")"] * len(deliveries))
    values: list[Any] = []
    for delivery in deliveries:
        values.append(prep("id", delivery.id))
        values.extend(prep(name, getattr(delivery, name)) for name in per_row)
    columns = ", ".join(f"column{i + 2} AS {name}" for i, name in enumerate(per_row))
    assignments = ", ".join(f"{name} = v.{name}" for name in per_row)
    # Table and column names are ours; every value is a parameter.
    sql = (
        f"UPDATE {table} SET status = %s, sent_at = %s, provider = %s, reason = '', "  # noqa: S608
        f"next_attempt_at = NULL, updated_at = %s, {assignments} "
        f"FROM (SELECT column1 AS id, {columns} FROM (VALUES {placeholders}) AS rows) AS v "
        f"WHERE {table}.id = v.id AND {table}.status = %s RETURNING {table}.id"
    )
    params = [
        DeliveryStatus.SENT,
        prep("sent_at", now),
        deliveries[0].provider,
        prep("updated_at", now),
        *values,
        DeliveryStatus.SENDING,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {meta.pk.to_python(row[0]) for row in cursor.fetchall()}


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
    transaction.on_commit(lambda: publish_sends_after_commit(item, countdown=delay))
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
