"""What a chaos run reads while its notifications settle: what they still owe (`unfinished`),
the digest windows and fan-outs in progress, the deliveries per status, and the timeline of
the fan-outs and the windows (bench/accounting.py makes the final account)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.accounting import DIGESTED, FINAL
from bench.receipts import chunks


def unfinished(notification_ids: list[str]) -> int:
    """What these notifications still owe: deliveries not final, digested items whose window
    is open or whose digest delivery is not final, and deliveries an unfinished fan-out has not
    created yet (at least one per unfinished fan-out)."""
    from django.db.models import Q

    from apps.deliveries.models import Delivery, FanOut

    total = 0
    for chunk in chunks(notification_ids, 5000):
        rows = Delivery.objects.filter(notification_id__in=chunk)
        total += rows.exclude(status__in=FINAL | {DIGESTED}).count()
        total += (
            rows.filter(status=DIGESTED)
            .filter(
                # Not without a digest: that item is final (and lost).
                Q(digest__isnull=False, digest__closed_at__isnull=True)
                | (Q(digest__delivery__isnull=False) & ~Q(digest__delivery__status__in=FINAL))
            )
            .count()
        )
        for expected, created in FanOut.objects.filter(
            notification_id__in=chunk, finished_at__isnull=True
        ).values_list("expected", "created"):
            total += max(1, expected - created)
    return total


def workflow_progress(notification_ids: list[str]) -> str:
    """The digest windows the items joined (open, or closed with a delivery not final yet) and
    the fan-outs (finished, deliveries created of expected): for the log while settling."""
    from apps.deliveries.models import Delivery, Digest, FanOut

    digest_ids: set[Any] = set()
    fans = [0, 0, 0, 0]  # fan-outs, finished, created, expected
    for chunk in chunks(notification_ids, 5000):
        digest_ids |= set(
            Delivery.objects.filter(notification_id__in=chunk, digest__isnull=False)
            .values_list("digest_id", flat=True)
            .distinct()
        )
        for finished_at, created, expected in FanOut.objects.filter(
            notification_id__in=chunk
        ).values_list("finished_at", "created", "expected"):
            fans = [
                fans[0] + 1,
                fans[1] + (finished_at is not None),
                fans[2] + created,
                fans[3] + expected,
            ]
    windows = Digest.objects.filter(id__in=digest_ids)
    opened = windows.filter(closed_at__isnull=True).count()
    sending = windows.filter(delivery__isnull=False).exclude(delivery__status__in=FINAL).count()
    return (
        f"digests {len(digest_ids)}: open {opened}, sending {sending}; fan-outs "
        f"{fans[1]}/{fans[0]} finished, {fans[2]}/{fans[3]} created"
    )


def workflow_timeline(notification_ids: list[str], *, start: float) -> list[str]:
    """Timeline lines (seconds from `start`, a wall-clock time): each fan-out from its 202 to
    its last chunk, and the digest windows' opening, closing and how many closed late (over
    2 s past due: the sweep was held up, or a window failed to close and was tried again)."""
    import datetime as dt

    from apps.deliveries.models import Delivery, Digest, FanOut

    def t(at: dt.datetime) -> str:
        return f"t+{at.timestamp() - start:5.1f}s"

    lines: list[tuple[float, str]] = []
    digest_ids: set[Any] = set()
    for chunk in chunks(notification_ids, 5000):
        digest_ids |= set(
            Delivery.objects.filter(notification_id__in=chunk, digest__isnull=False)
            .values_list("digest_id", flat=True)
            .distinct()
        )
        for fan in FanOut.objects.filter(notification_id__in=chunk).select_related("notification"):
            begun, done = fan.notification.created_at, fan.finished_at
            lines.append(
                (
                    begun.timestamp(),
                    f"{t(begun)}  fan-out to {fan.topic_key} "
                    f"({'+'.join(fan.notification.channels)}, {fan.expected} deliveries) accepted; "
                    + (f"last chunk at {t(done)}" if done else "not finished"),
                )
            )
    windows = list(
        Digest.objects.filter(id__in=digest_ids).values_list("opened_at", "closes_at", "closed_at")
    )
    if windows:
        opened = sorted(w[0] for w in windows)
        closed = sorted(w[2] for w in windows if w[2] is not None)
        delays = [(at - due).total_seconds() for _, due, at in windows if at is not None]
        late = sum(1 for d in delays if d > 2)
        lines.append(
            (
                opened[0].timestamp(),
                f"{t(opened[0])}  {len(windows)} digest windows opened from here to "
                f"{t(opened[-1])}, closed "
                + (f"from {t(closed[0])} to {t(closed[-1])}" if closed else "never")
                + f", {late} of them over 2 s late (at most {max(delays, default=0):.1f} s)",
            )
        )
    return [line for _, line in sorted(lines)]


def status_counts(notification_ids: list[str]) -> Counter[str]:
    from django.db.models import Count

    from apps.deliveries.models import Delivery

    counts: Counter[str] = Counter()
    for chunk in chunks(notification_ids, 5000):
        rows = (
            Delivery.objects.filter(notification_id__in=chunk)
            .values_list("status")
            .annotate(n=Count("id"))
        )
        for status, n in rows:
            counts[status] += n
    return counts
