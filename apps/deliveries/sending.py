"""One attempt at sending a delivery: claim, re-check, render, call the provider, record."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.deliveries.assignments import deliveries_variants_assign
from apps.deliveries.calls import (
    Call,
    Prepared,
    Sent,
    attempt_outcome,
    call_finish,
    call_prepare,
    sent_failure,
)
from apps.deliveries.guards import Gate, deliveries_peek, deliveries_wait, gate_open
from apps.deliveries.inflight import Flight
from apps.deliveries.lifecycle import (
    deliveries_claim,
    deliveries_hand_back,
    deliveries_sent,
    delivery_dead,
    delivery_hold,
    delivery_retrying,
)
from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from apps.deliveries.rules import delivery_decide
from apps.recipients.selectors import (
    recipient_address,
    suppressions_among,
)
from notifier.errors import TransientFailure
from notifier.providers.base import Provider
from notifier.retry import RetryPolicy
from notifier.routing import Action

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
    if decision.action is Action.SEND:
        return None
    return AttemptOutcome(delivery_hold(delivery, decision))


def deliveries_attempt(*, delivery_ids: Sequence[str]) -> dict[str, AttemptOutcome]:
    """One attempt at each of these deliveries (a send task's batch: publish_sends puts one
    channel and priority in a message). Claimed together, sent concurrently
    (up to the provider's in-flight limit, inflight.py), recorded
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
        deliveries_variants_assign(to_send)  # A/B tests: no statement for a batch without one
        prepared = [call_prepare(provider, delivery) for delivery in to_send]
    except Exception:
        # Redis or the database failed before any provider call: give back what this batch
        # claimed and did not settle (back to `queued`, the attempt uncounted), if the database
        # still lets us, and let the task's own retry (tasks.py) or the reconciler take it.
        logger.exception("send batch interrupted before sending")
        with contextlib.suppress(Exception):
            unsettled = [pk for pk in now_ids if pk in claimed and pk not in outcomes]
            deliveries_hand_back(unsettled, channel=channel, priority=priority)
        with contextlib.suppress(Exception):
            gate.release()
        raise
    return _send(
        prepared,
        gate=gate,
        provider=provider,
        channel=channel,
        priority=priority,
        outcomes=outcomes,
    )


def _send(
    prepared: list[Prepared],
    *,
    gate: Gate,
    provider: Provider,
    channel: str,
    priority: str,
    outcomes: dict[str, AttemptOutcome],
) -> dict[str, AttemptOutcome]:
    """Make the prepared calls (together, inflight.py) and record their outcomes as they come."""
    # Those that failed before their provider call (a template that does not render, a push
    # recipient without devices) are attempts too, recorded with the first write.
    calls: list[Call] = [p.call for p in prepared if p.call is not None]
    ready = [p for p in prepared if p.call is None]
    stop = threading.Event()
    if any(c.stop for c in calls):  # the task's time ran out while rendering
        stop.set()
    news = BreakerNews(gate, stop)
    flight: Flight | None = None
    unstarted: list[str] = []
    started = recorded = time.monotonic()
    called = False
    try:
        flight = Flight(provider, ready, stop=stop, heard=news.heard)
        for group in flight.finished(every=settings.SEND_BATCH_RECORD_SECONDS):
            for one, sent in group:
                if sent is None:
                    unstarted.append(str(one.delivery.id))
                    continue
                called = True
                calls.append(one.context.run(call_finish, provider, one, sent))
            clock = time.monotonic()
            if clock - started > settings.SEND_BATCH_SECONDS:
                stop.set()  # the rest go back to the queue, unattempted
            # Outcomes are written as calls finish, at least every SEND_BATCH_RECORD_SECONDS:
            # a worker killed mid-batch sends again only what it sent since the last write.
            if calls and clock - recorded >= settings.SEND_BATCH_RECORD_SECONDS:
                news.tell()
                written, calls = calls, []
                outcomes.update(_record(written, provider=provider.name))
                recorded = time.monotonic()
        news.tell()
        written, calls = calls, []
        if written:
            outcomes.update(_record(written, provider=provider.name))
        if not called:
            gate.release()  # a probe that never went out frees its slot
        if unstarted:
            # The breaker opened or the batch ran out of time: these ask the gate again.
            back, unstarted = unstarted, []
            deliveries_hand_back(back, channel=channel, priority=priority)
            outcomes.update(dict.fromkeys(back, AttemptOutcome("waiting", retry_in=0.0)))
    except Exception:
        # Not a send (those never raise): Redis or the database failed between sends. Wait for
        # the calls in flight (up to the provider's timeout), write what was sent and hand back
        # what never started if we still can, then let the task fail; whatever stays in
        # `sending` (a call that did not finish, an outcome that could not be written) is the
        # reconciler's after SEND_STUCK_AFTER_SECONDS.
        logger.exception("send batch interrupted")
        left = flight.rest() if flight is not None else [(p, None) for p in ready]
        for one, sent in left:
            if sent is None:
                unstarted.append(str(one.delivery.id))
            else:
                called = True
                with contextlib.suppress(Exception):
                    calls.append(one.context.run(call_finish, provider, one, sent))
        with contextlib.suppress(Exception):
            if calls:
                _record(calls, provider=provider.name)
        with contextlib.suppress(Exception):
            if unstarted:
                deliveries_hand_back(unstarted, channel=channel, priority=priority)
        with contextlib.suppress(Exception):
            if not called:
                gate.release()
        raise
    return outcomes


class BreakerNews:
    """What the provider's breaker hears of a batch's calls: every transient failure of the
    provider (not our own errors) at once, from the thread that made the call (Flight calls
    `heard` one at a time); that the provider answered, before the next failure and at each
    write (`tell`): a success only resets its count, telling it twice in a row changes nothing.
    A failure that opens the breaker sets `stop`: the calls not yet started never start, and
    the batch tells it nothing more (a call that was already in flight and succeeds after the
    opening must not close it: it opened on the evidence, the probe decides when it closes)."""

    def __init__(self, gate: Gate, stop: threading.Event) -> None:
        self._gate = gate
        self._stop = stop
        self._untold = False  # the provider answered since the breaker was last told
        self._opened = False  # this batch's news opened it: it hears nothing more from us
        self._lock = threading.Lock()

    def heard(self, sent: Sent) -> None:
        if sent.worker_error:
            return
        failure = sent_failure(sent)
        with self._lock:
            if self._opened:
                return
            if not isinstance(failure, TransientFailure):
                self._untold = True
                return
            if self._untold:
                self._gate.record(None)
                self._untold = False
            if self._gate.record(failure):
                self._opened = True
                self._stop.set()

    def tell(self) -> None:
        with self._lock:
            if self._untold and not self._opened:
                self._gate.record(None)
                self._untold = False


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


def _record(calls: Sequence[Call], *, provider: str) -> dict[str, AttemptOutcome]:
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
                outcome=attempt_outcome(c.failure),
                response_code=c.result.status_code
                if c.result
                else c.failure.status_code
                if c.failure
                else None,
                latency_ms=c.latency_ms,
                error=(f"{c.failure.reason}: {c.failure.detail}" if c.failure else "")[:500],
                cost_micros=c.cost_micros,
                # Nothing to add to the rollup's cost: out of the aggregator's queue at once.
                counted=c.cost_micros == 0,
            )
            for c in calls
        )
        sent = [(c.delivery, c.result) for c in calls if c.result is not None]
        if sent:
            statuses = deliveries_sent(sent)
            outcomes.update({pk: AttemptOutcome(status) for pk, status in statuses.items()})
    for c in calls:
        failure = c.failure
        if c.result is not None:
            continue
        if failure is None:  # pragma: no cover - send() either returned or raised
            raise RuntimeError("provider returned no result")
        delivery = c.delivery
        with transaction.atomic():
            if isinstance(failure, TransientFailure) and delivery.attempts < delivery.max_attempts:
                delay = retry_policy().delay(delivery.attempts, retry_after=failure.retry_after)
                status = delivery_retrying(delivery, failure, delay=delay)
                retry_in = delay if status == DeliveryStatus.RETRYING else None
                outcomes[str(delivery.id)] = AttemptOutcome(status, retry_in=retry_in)
            else:
                outcomes[str(delivery.id)] = AttemptOutcome(delivery_dead(delivery, failure))
    return outcomes
