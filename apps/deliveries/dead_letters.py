"""Writes for dead letters: replaying a dead delivery for a fresh series of attempts."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import Conflict, NotFound
from apps.deliveries.lifecycle import deliveries_replay
from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus

# One bulk replay re-queues at most this many dead letters; call again for the rest.
BULK_REPLAY_LIMIT = 1000


def _replayable(dead_letter: DeadLetter, delivery: Delivery) -> str:
    """Why this dead letter cannot be replayed ("" when it can)."""
    if dead_letter.replayed_at is not None:
        return f"already replayed by {dead_letter.replayed_by or 'someone'}"
    if delivery.status != DeliveryStatus.DEAD:
        return f"delivery is {delivery.status}, not dead"
    return ""


def _mark_replayed(dead_letters: Sequence[DeadLetter], *, replayed_by: str) -> None:
    now = timezone.now()
    for dead_letter in dead_letters:
        dead_letter.replayed_at = now
        dead_letter.replayed_by = replayed_by[:150]
    DeadLetter.objects.bulk_update(dead_letters, ["replayed_at", "replayed_by"])


def _requeue(pairs: Sequence[tuple[DeadLetter, Delivery]], *, replayed_by: str) -> list[DeadLetter]:
    """Queue the deliveries again (the lifecycle's replay) and mark their dead letters replayed.
    Returns the dead letters replayed."""
    letter_of = {delivery.pk: dead_letter for dead_letter, delivery in pairs}
    done = deliveries_replay(
        [delivery for _, delivery in pairs],
        detail=lambda d: f"replayed by {replayed_by} (dead letter {letter_of[d.pk].pk})",
    )
    replayed = [letter_of[d.pk] for d in done]
    _mark_replayed(replayed, replayed_by=replayed_by)
    return replayed


@transaction.atomic
def dead_letter_replay(*, dead_letter_id: int, replayed_by: str) -> DeadLetter:
    """Re-queue the dead letter's delivery for a fresh series of attempts; record who and when.

    Raises NotFound for an unknown id and Conflict when it was replayed already or the delivery
    is no longer dead.
    """
    dead_letter = DeadLetter.objects.select_for_update().filter(pk=dead_letter_id).first()
    if dead_letter is None:
        raise NotFound("No such dead letter.")
    delivery = Delivery.objects.select_for_update().get(pk=dead_letter.delivery_id)
    problem = _replayable(dead_letter, delivery)
    if problem:
        raise Conflict(f"Dead letter {dead_letter_id} cannot be replayed: {problem}.")
    _requeue([(dead_letter, delivery)], replayed_by=replayed_by)
    metrics.dead_letters_replayed(channels=[dead_letter.channel])
    return dead_letter


@transaction.atomic
def dead_letters_replay(
    *,
    replayed_by: str,
    ids: Sequence[int] | None = None,
    channel: str | None = None,
    limit: int = BULK_REPLAY_LIMIT,
) -> list[DeadLetter]:
    """Replay the not yet replayed dead letters named by `ids`, or all of `channel`'s.

    Those that cannot be replayed (already replayed, delivery no longer dead) are left alone;
    locked rows are skipped, so two concurrent bulk replays never re-queue a delivery twice.
    """
    candidates = DeadLetter.objects.filter(
        replayed_at__isnull=True, delivery__status=DeliveryStatus.DEAD
    )
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    if channel is not None:
        candidates = candidates.filter(channel=channel)
    dead_letters = list(
        candidates.select_for_update(skip_locked=True, of=("self",)).order_by("pk")[:limit]
    )
    deliveries = {
        d.pk: d
        for d in Delivery.objects.select_for_update(skip_locked=True).filter(
            pk__in=[dl.delivery_id for dl in dead_letters], status=DeliveryStatus.DEAD
        )
    }
    pairs: list[tuple[DeadLetter, Delivery]] = []
    for dead_letter in dead_letters:
        delivery = deliveries.pop(dead_letter.delivery_id, None)
        if delivery is None or _replayable(dead_letter, delivery):
            continue  # locked by someone else, or two dead letters of one delivery
        pairs.append((dead_letter, delivery))
    replayed = _requeue(pairs, replayed_by=replayed_by)
    metrics.dead_letters_replayed(channels=[dl.channel for dl in replayed])
    return replayed
