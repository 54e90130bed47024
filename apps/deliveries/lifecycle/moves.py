"""Every status change of an existing delivery, each through the table's guarded UPDATE (table.py)
with its event row, metrics, and what must follow it: the publish after commit (queued again,
retrying), the dead letter, the fallback (dead, failed, skipped)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from apps.core import metrics
from apps.deliveries.lifecycle.create import enqueue_on_commit
from apps.deliveries.lifecycle.escalation import Pair, steps_engaged, steps_pending
from apps.deliveries.lifecycle.fallback import fallback_after_failure
from apps.deliveries.lifecycle.table import (
    CANCEL,
    CLAIM,
    DEFER,
    DIE,
    HAND_BACK,
    READ,
    RELEASE,
    REPLAY,
    REPORTS,
    REQUEUE,
    RETRY,
    SENT,
    SKIP,
    STAND_DOWN,
    Shift,
    Transition,
    apply,
    events_add,
    move,
)
from apps.deliveries.models import (
    DeadLetter,
    Delivery,
    DeliveryStatus,
    default_max_attempts,
)
from apps.deliveries.queueing import publish_sends_after_commit
from notifier.channels import spec
from notifier.errors import DeliveryFailure, PermanentFailure
from notifier.providers.base import SendResult
from notifier.routing import Action, Decision, Reason


def _move_rows(
    transition: Transition,
    deliveries: Sequence[Delivery],
    values: dict[str, Any],
    detail: str | Callable[[Delivery], str],
    now: dt.datetime | None = None,
) -> list[Delivery]:
    """Move loaded rows, keep them in step, add their events. Returns those moved."""
    now = now or timezone.now()
    moved = move(transition, [d.id for d in deliveries], values=values, now=now)
    done = [d for d in deliveries if d.id in moved]
    apply(transition, done, {**values, "updated_at": now})
    if transition.recorded:
        events_add(done, transition.target, detail)
    return done


# --- a send task's batch ---------------------------------------------------------------------


def deliveries_claim(*, delivery_ids: Sequence[str]) -> set[str]:
    """Take the deliveries for one attempt each (status `sending`, attempt counter + 1); a row
    another worker claimed first is no longer claimable. Returns the ids taken."""
    if len(delivery_ids) == 1:
        # Retries and single sends travel one per message: the guarded UPDATE alone is the
        # claim (one row cannot deadlock), one round trip instead of a locked transaction's four.
        return {str(pk) for pk in move(CLAIM, list(delivery_ids), values={"attempts": Shift(1)})}
    with transaction.atomic():
        # Locked in id order, so two workers holding overlapping batches cannot deadlock.
        ids = list(
            Delivery.objects.select_for_update()
            .filter(id__in=delivery_ids, status__in=CLAIM.sources)
            .order_by("id")
            .values_list("id", flat=True)
        )
        moved = move(CLAIM, ids, values={"attempts": Shift(1)})
    return {str(pk) for pk in moved}


def deliveries_hand_back(ids: Sequence[str], *, channel: str, priority: str) -> None:
    """Claimed but not attempted: back to `queued` without counting an attempt, and published
    again (at once: the gate decides what happens next)."""
    if not ids:
        return
    with transaction.atomic():
        move(HAND_BACK, ids, values={"attempts": Shift(-1), "next_attempt_at": None})
        items = [(pk, channel, priority) for pk in ids]
        transaction.on_commit(lambda: publish_sends_after_commit(items))


def deliveries_postpone(*, delivery_ids: Sequence[str], until: dt.datetime) -> None:
    """Not a status change: claimable rows wait for a rate limit or a breaker until `until`
    (which keeps the reconciler off them)."""
    Delivery.objects.filter(id__in=delivery_ids, status__in=CLAIM.sources).update(
        next_attempt_at=until, updated_at=timezone.now()
    )


def delivery_hold(delivery: Delivery, decision: Decision) -> str:
    """The re-check before sending said skip or defer: nothing was attempted (the claim's count
    is taken back). A skip may start the fallback. Returns the new status."""
    skip = decision.action is Action.SKIP
    values: dict[str, Any] = {"attempts": Shift(-1), "reason": decision.reason}
    if not skip:
        values["not_before"] = decision.not_before
    with transaction.atomic():
        if not _move_rows(SKIP if skip else DEFER, [delivery], values, decision.reason):
            # Someone moved it first (the reconciler took it for stuck): nothing was held, so
            # nothing is counted and no fallback starts.
            return str(Delivery.objects.values_list("status", flat=True).get(pk=delivery.pk))
        if skip:
            metrics.delivery_skipped(delivery=delivery, reason=decision.reason)
        fallback_after_failure(delivery=delivery)
    return str(delivery.status)


def deliveries_sent(sent: Sequence[tuple[Delivery, SendResult]]) -> dict[str, str]:
    """`sent` for those still `sending` (one UPDATE, one INSERT for the events, whatever the
    batch's size), with the A/B label each was rendered with (`variant`, in the same UPDATE);
    a row a provider report overtook keeps the reported status. Status by id."""
    now = timezone.now()
    deliveries = [d for d, _ in sent]
    per_row: dict[str, list[Any]] = {
        "provider_message_id": [r.provider_message_id[:200] for _, r in sent]
    }
    if spec(deliveries[0].channel).per_device:  # which devices have it
        per_row["push_accepted"] = [d.push_accepted for d in deliveries]
    if any(d.variant for d in deliveries):  # an A/B test's label (sending.py assigned it)
        per_row["variant"] = [d.variant for d in deliveries]
    values = {"sent_at": now, "provider": deliveries[0].provider, "reason": ""}
    values["next_attempt_at"] = None
    written = move(SENT, [d.id for d in deliveries], values=values, per_row=per_row, now=now)
    outcomes: dict[str, str] = {}
    settled: list[Delivery] = []
    for i, (delivery, result) in enumerate(sent):
        if delivery.id in written:
            apply(SENT, [delivery], {**values, "updated_at": now})
            delivery.provider_message_id = per_row["provider_message_id"][i]
            settled.append(delivery)
        else:
            outcomes[str(delivery.id)] = _overtaken(delivery, result)
    events_add(settled, SENT.target, lambda d: f"accepted by {d.provider}")
    for delivery in settled:
        metrics.delivery_sent(delivery=delivery)
        outcomes[str(delivery.id)] = str(SENT.target)
    return outcomes


def delivery_retrying(delivery: Delivery, failure: DeliveryFailure, *, delay: float) -> str:
    """A transient failure with attempts left: `retrying`, published again after `delay`."""
    values = {
        "next_attempt_at": timezone.now() + dt.timedelta(seconds=delay),
        "reason": failure.reason[:200],
        "provider": delivery.provider,
    }
    if delivery.variant:  # the A/B label it was rendered with: counted under it (rollup)
        values["variant"] = delivery.variant
    detail = f"attempt {delivery.attempts} failed ({failure.reason}); next in {delay:.1f}s"
    if not _move_rows(RETRY, [delivery], values, detail):
        return _overtaken(delivery, None)
    item = [(str(delivery.id), delivery.channel, delivery.priority)]
    transaction.on_commit(lambda: publish_sends_after_commit(item, countdown=delay))
    metrics.delivery_retrying(delivery=delivery, reason=failure.reason, delay=delay)
    return str(RETRY.target)


def delivery_dead(delivery: Delivery, failure: DeliveryFailure) -> str:
    """A permanent failure, or retries exhausted: `dead`, a dead letter to replay it from, and
    perhaps the notification's fallback."""
    values = {"reason": failure.reason[:200], "next_attempt_at": None}
    values["provider"] = delivery.provider
    if delivery.variant:  # the A/B label it was rendered with: counted under it (rollup)
        values["variant"] = delivery.variant
    kind = "permanent failure" if isinstance(failure, PermanentFailure) else "retries exhausted"
    if not _move_rows(DIE, [delivery], values, f"{kind}: {failure.reason}"):
        return _overtaken(delivery, None)
    DeadLetter.objects.create(
        delivery=delivery,
        channel=delivery.channel,
        reason=failure.reason[:200],
        last_error=f"{kind}: {failure.detail}"[:2000],
        attempts=delivery.attempts,
    )
    metrics.delivery_dead(
        delivery=delivery, reason=failure.reason, permanent=kind != "retries exhausted"
    )
    fallback_after_failure(delivery=delivery)
    return str(DIE.target)


def _overtaken(delivery: Delivery, result: SendResult | None) -> str:
    """The provider already reported on this delivery, so it has it: keep the reported status
    (no retry, no dead letter), and record who sent it. Returns that status."""
    current = Delivery.objects.select_for_update().get(pk=delivery.pk)
    current.provider = delivery.provider
    fields = ["provider", "updated_at"]
    if delivery.variant:  # the A/B label it was rendered with
        current.variant = delivery.variant
        fields.append("variant")
    if result is not None:
        current.sent_at = timezone.now()
        current.provider_message_id = result.provider_message_id[:200]
        fields += ["sent_at", "provider_message_id"]
    current.save(update_fields=fields)
    events_add(
        [current],
        None,
        f"attempt {delivery.attempts} finished after {current.provider} reported {current.status}",
        announce=False,  # the report announced its status
    )
    if result is not None:
        metrics.delivery_sent(delivery=current)
    return str(current.status)


# --- reports and confirmations ---------------------------------------------------------------


@transaction.atomic
def delivery_report(*, delivery: Delivery, status: str, detail: str) -> bool:
    """Apply a provider-reported status if it moves the delivery forward (table.REPORTS); a
    failure may start the fallback. True if it changed."""
    transition = REPORTS.get(DeliveryStatus(status))
    locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if transition is None or locked.status not in transition.sources:
        return False
    failed = transition.target == DeliveryStatus.FAILED
    _move_rows(transition, [locked], {"reason": detail[:200]} if failed else {}, detail)
    if failed:
        fallback_after_failure(delivery=locked)
    else:
        _steps_stand_down({(locked.notification_id, locked.recipient_id)}, locked.status)
    delivery.status = locked.status
    return True


def deliveries_read(*, delivery_ids: Sequence[UUID | str]) -> int:
    """Move these deliveries to `read`, with an event in each timeline, and stand down the
    escalation steps waiting on `read` of every one of them (moved or not); the number moved."""
    if not delivery_ids:
        return 0
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update()
            .filter(id__in=delivery_ids, status__in=READ.sources)
            .order_by("id")
            # What the `read` event's announcement needs, no more.
            .only(
                "id", "notification_id", "recipient_id", "channel", "reason", "provider", "attempts"
            )
        )
        moved = move(READ, [d.id for d in rows])
        events_add([d for d in rows if d.id in moved], READ.target, "read by recipient")
        # Every delivery read, moved or not: one read while `sending` (the worker has not
        # marked it sent yet) is a read all the same, and its steps must not go out.
        pairs = set(
            Delivery.objects.filter(id__in=delivery_ids).values_list(
                "notification_id", "recipient_id"
            )
        )
        _steps_stand_down(pairs, READ.target)
    return len(moved)


def deliveries_seen(*, delivery_ids: Sequence[UUID | str]) -> int:
    """The recipient saw these (in-app) deliveries: no status change (there is no `seen`
    status), but the escalation steps waiting on `seen` stand down. The number stood down."""
    pairs = set(
        Delivery.objects.filter(id__in=delivery_ids).values_list("notification_id", "recipient_id")
    )
    return len(_steps_stand_down(pairs, "seen"))


def _steps_stand_down(pairs: set[Pair], reached: str) -> list[Delivery]:
    """A delivery of these (notification, recipient) pairs reached `reached`: the pending
    escalation steps it satisfies are cancelled, reason `engaged`."""
    steps = steps_pending(pairs, reached=reached)
    message = Reason.ENGAGED.message()
    done = _move_rows(STAND_DOWN, steps, {"reason": message}, f"{message}: {reached}")
    metrics.escalation_steps(deliveries=done, outcome="engaged")
    return done


# --- before sending: cancel, release, requeue, replay ----------------------------------------


def deliveries_cancel(deliveries: Sequence[Delivery], *, reason: str) -> list[Delivery]:
    """Cancel these (locked) deliveries if not yet handed to a provider. Returns those cancelled."""
    return _move_rows(CANCEL, deliveries, {"reason": reason}, reason)


def deliveries_release(deliveries: Sequence[Delivery], *, now: dt.datetime) -> list[Delivery]:
    """Scheduled and deferred deliveries whose time has come: queued, published after commit.
    An escalation step whose `unless` an earlier delivery met is stood down instead."""
    engaged = steps_engaged(deliveries)
    if engaged:
        message = Reason.ENGAGED.message()
        stood = [d for d in deliveries if d.id in engaged]
        stood = _move_rows(STAND_DOWN, stood, {"reason": message}, f"{message}: not sent", now)
        metrics.escalation_steps(deliveries=stood, outcome="engaged")
    due = [d for d in deliveries if d.id not in engaged]
    done = _move_rows(RELEASE, due, {"next_attempt_at": None}, _release_detail, now)
    metrics.escalation_steps(deliveries=[d for d in done if d.escalation_step], outcome="released")
    enqueue_on_commit(done)
    return done


def _release_detail(delivery: Delivery) -> str:
    if delivery.escalation_step:
        return f"released: escalation step {delivery.escalation_step} due, not engaged"
    return "released: due"


def deliveries_requeue(
    deliveries: Sequence[Delivery], *, detail: str, now: dt.datetime | None = None
) -> list[Delivery]:
    """Queued again and published after commit: their message is gone (the reconciler)."""
    done = _move_rows(REQUEUE, deliveries, {"next_attempt_at": None}, detail, now)
    enqueue_on_commit(done)
    return done


def deliveries_replay(
    deliveries: Sequence[Delivery], *, detail: Callable[[Delivery], str]
) -> list[Delivery]:
    """Dead deliveries queued again for a fresh series of attempts under the current policy."""
    now = timezone.now()
    values: dict[str, Any] = {"attempts": 0, "reason": "", "next_attempt_at": None}
    values["not_before"] = None
    per_row = {"max_attempts": [default_max_attempts(d.channel) for d in deliveries]}
    moved = move(REPLAY, [d.id for d in deliveries], values=values, per_row=per_row, now=now)
    done = [d for d in deliveries if d.id in moved]
    apply(REPLAY, done, {**values, "updated_at": now})
    for delivery in done:
        delivery.max_attempts = default_max_attempts(delivery.channel)
    events_add(done, REPLAY.target, detail)
    enqueue_on_commit(done)
    return done
