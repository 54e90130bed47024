"""Digests: deliveries that join a window per (recipient, template, channel, key) and go out as
one delivery when it closes (docs/workflows.md, "Digests").

The window's state is its row in PostgreSQL, and nothing else: no message per window waits in
the broker (a fan-out to 100,000 subscribers opens as many windows). Beat runs the sweep
(`digests_close_due`) every DIGEST_CLOSE_EVERY_SECONDS on the `timers` queue, whose worker runs
nothing long; the sweep closes the due windows in bounded batches and queues itself again while
more are due. A restart or a Redis flush loses nothing: the next sweep finds them in the table.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import InvalidInput
from apps.deliveries.compose import digest_item, digest_render_fits
from apps.deliveries.digest_windows import Target, digest_windows
from apps.deliveries.lifecycle import (
    DIGESTIBLE,
    delivery_digested,
    digest_deliver,
    digest_items_leave,
    digest_window_fail,
)
from apps.deliveries.models import Delivery, DeliveryStatus, Digest, Notification
from apps.recipients.models import Preference, Recipient
from apps.recipients.selectors import recipient_context
from apps.templates.models import Template
from notifier.digests import DigestError, DigestPlan, DigestSpec, digest_plan, parse_digest
from notifier.queues import TIMERS_QUEUE
from notifier.rendering import RenderError, RenderLimits, render, required_variables

logger = logging.getLogger(__name__)

SWEEP_TASK = "deliveries.digests_close_due"
# Windows one sweep closes at most; a full batch queues the next sweep at once instead of
# waiting for beat.
SWEEP_BATCH = 100
# Windows locked and closed in one transaction (a savepoint each): a request joining one of
# them waits for these few closes, not for the whole batch.
SWEEP_CHUNK = 10
# A window that fails to close is tried again after CLOSE_RETRY_FIRST seconds, doubling up to
# CLOSE_RETRY_MAX; the CLOSE_TRIES-th failure closes it `failed` (about 10 minutes in all).
CLOSE_RETRY_FIRST = 5
CLOSE_RETRY_MAX = 600
CLOSE_TRIES = 8
SWEEP_AGAIN_EXPIRES = 10  # seconds
KEY_MAX = 200


def digest_declared(*, template: Template, requested: object) -> tuple[DigestSpec | None, bool]:
    """The declaration in force for a request (its own, else the template's) and whether the
    request said `"digest": false` (the template's declaration is returned all the same: its
    variants render `items` and `count`). A bad declaration is the caller's 400."""
    off = requested is False
    source, field = (requested, "digest") if requested else (template.digest, "")
    try:
        return parse_digest(source, field=field or "template.digest"), off
    except DigestError as exc:
        raise InvalidInput(str(exc), fields=exc.fields) from exc


# A key is a short label rendered for every recipient of a request: tight limits, so that a
# heavy expression cannot make a bulk request slow.
KEY_LIMITS = RenderLimits(max_output_bytes=1024, max_loop_iterations=1000, max_seconds=0.05)


def digest_key(
    *, spec: DigestSpec | None, variables: Mapping[str, Any], recipient: Recipient
) -> str:
    """The key expression rendered for one notification and recipient ("" without one)."""
    if spec is None or not spec.key:
        return ""
    try:
        rendered = render(
            body=spec.key,
            variables=variables,
            recipient=recipient_context(recipient=recipient),
            limits=KEY_LIMITS,
        )
    except RenderError as exc:
        # Named as the serializer names a declaration's errors: `digest`, "<part>: <problem>".
        raise InvalidInput(
            f"Invalid digest: the key does not render: {exc}",
            fields={"digest": [f"key: does not render: {exc}"]},
        ) from exc
    return rendered.body.strip()[:KEY_MAX]


def _cadences(recipient: Recipient) -> dict[str, str]:
    try:
        pref: Preference | None = recipient.preference
    except Preference.DoesNotExist:
        pref = None
    return dict(pref.digest) if pref is not None else {}


@dataclass(frozen=True)
class DigestJoins:
    digested: list[Delivery] = field(default_factory=list)
    opened: list[Digest] = field(default_factory=list)


def deliveries_digest(
    *,
    notification: Notification,
    deliveries: Sequence[Delivery],
    declared: DigestSpec | None,
    now: dt.datetime,
    lenient_keys: bool = False,
) -> DigestJoins:
    """Before the insert: each new delivery a digest applies to joins its open window (opened
    now if none), all windows of the request found or opened in a few statements. `declared`
    is the notification's (None: not digested; building.Workflows decides, once per
    notification); skipped ones are left alone. Returns those digested and the windows opened.
    A key that does not render is the caller's 400, or with `lenient_keys` (a fan-out's chunk)
    that recipient's deliveries are not digested (sent on their own) and it is logged."""
    if declared is None:
        return DigestJoins()
    # The key is rendered once per recipient if it reads `recipient`, else once per request.
    per_recipient = "recipient" in required_variables([declared.key], provided=frozenset())
    keys: dict[Any, str | None] = {}
    fresh: dict[Target, Digest] = {}
    joining: list[tuple[Delivery, Target]] = []
    for delivery in deliveries:
        if delivery.status not in DIGESTIBLE:
            continue
        recipient = delivery.recipient
        plan = digest_plan(
            declared=declared,
            request_off=False,  # `"digest": false` came as `declared` None
            cadences=_cadences(recipient),
            category=notification.category,
            priority=notification.priority,
            timezone=recipient.timezone,
            now=now,
        )
        if plan is None:
            continue
        scope = recipient.pk if per_recipient else None
        if scope not in keys:
            keys[scope] = _key_or_none(declared, notification, recipient, lenient=lenient_keys)
        key = keys[scope]
        if key is None:
            continue
        target = (recipient.pk, notification.template_id, delivery.channel, key)
        joining.append((delivery, target))
        if target not in fresh:
            fresh[target] = _window_new(notification, delivery, plan, key=key)
    if not joining:
        return DigestJoins()
    windows, opened = digest_windows(fresh)
    for delivery, target in joining:
        delivery_digested(delivery, windows[target])
    return DigestJoins(digested=[delivery for delivery, _ in joining], opened=opened)


def _key_or_none(
    spec: DigestSpec, notification: Notification, recipient: Recipient, *, lenient: bool
) -> str | None:
    try:
        return digest_key(spec=spec, variables=notification.variables, recipient=recipient)
    except InvalidInput as exc:
        if not lenient:
            raise
        logger.warning(
            "digest key does not render; sent on its own: %s",
            exc,
            extra={"notification_id": str(notification.pk), "recipient_id": recipient.pk},
        )
        return None


def digest_joins_counted(joins: DigestJoins) -> None:
    """Count the joins and the windows opened: after the deliveries' insert (it can fail)."""
    for digest in joins.opened:
        metrics.digest_opened(digest=digest)
    if joins.digested:
        metrics.digest_items_joined(deliveries=joins.digested)


def _window_new(
    notification: Notification, delivery: Delivery, plan: DigestPlan, *, key: str
) -> Digest:
    return Digest(
        client_id=notification.client_id,
        recipient=delivery.recipient,
        template_id=notification.template_id,
        channel=delivery.channel,
        key=key,
        max_items=plan.max_items,
        cadence=plan.cadence,
        closes_at=plan.closes_at,
    )


@transaction.atomic
def digest_close(*, digest_id: str, now: dt.datetime | None = None) -> str:
    """Close this one window if it is due (waiting for a request that is joining it). Returns
    the outcome ("" if not closed now). The sweep closes windows in batches instead."""
    now = now or timezone.now()
    digest = (
        Digest.objects.select_for_update(of=("self",))
        .select_related("recipient__preference")
        .filter(pk=digest_id, closed_at__isnull=True, closes_at__lte=now)
        .first()
    )
    return _window_close(digest, now=now) if digest is not None else ""


def _window_close(digest: Digest, *, now: dt.datetime) -> str:
    """Close the locked, due window: one delivery with `items` (newest first, at most
    `max_items`) and `count`, or nothing when every item left. Returns the outcome."""
    joined = Delivery.objects.filter(digest=digest, status=DeliveryStatus.DIGESTED)
    item_ids = list(joined.order_by("-created_at", "-id").values_list("id", flat=True))
    digest.closed_at, digest.item_count = now, len(item_ids)
    if not item_ids:
        digest.outcome = Digest.Outcome.EMPTY
    else:
        shown = list(
            joined.filter(id__in=item_ids[: digest.max_items])
            .select_related("notification")
            .order_by("-created_at", "-id")
        )
        latest = shown[0].notification
        items = [digest_item(d) for d in shown]
        variables = _digest_fitted(digest, latest, items, count=len(item_ids))
        digest.delivery = digest_deliver(
            digest, latest=latest, variables=variables, item_ids=item_ids, now=now
        )
        digest.outcome = Digest.Outcome.SENT
    digest.save(update_fields=["closed_at", "item_count", "outcome", "delivery"])
    metrics.digest_closed(digest=digest)
    return str(digest.outcome)


def _digest_fitted(
    digest: Digest, latest: Notification, items: list[dict[str, Any]], *, count: int
) -> dict[str, Any]:
    """The digest's variables with as many of `items` (newest first) as its channel's render
    limits allow: the oldest are left out rather than the whole digest dying at its render.
    `count` stays the number joined; `shown` says how many are in `items`."""

    def with_items(n: int) -> dict[str, Any]:
        return {**latest.variables, "items": items[:n], "count": count, "shown": n}

    def fits(n: int) -> bool:
        return digest_render_fits(
            version=latest.template_version,
            channel=digest.channel,
            recipient=digest.recipient,
            variables=with_items(n),
        )

    if fits(len(items)):
        return with_items(len(items))
    low, high = 1, len(items) - 1  # the most that fit lies in [low, high] (1 if none fits)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    logger.info(
        "digest trimmed to fit the render limits",
        extra={"digest_id": str(digest.pk), "shown": low, "count": count},
    )
    return with_items(low)


def digests_close_due(
    *, now: dt.datetime | None = None, batch: int = SWEEP_BATCH, chunk: int = SWEEP_CHUNK
) -> int:
    """The sweep (beat, every DIGEST_CLOSE_EVERY_SECONDS, on the timers queue): up to `batch`
    open windows past their time, earliest first (the partial index on `closes_at`), each
    `chunk` locked (SKIP LOCKED: a window a joining request or another sweep holds is the next
    sweep's) and closed in a transaction of their own, so that a joining request waits at most
    for its own window's chunk. A window that fails to close is tried again later (backoff)
    and, after CLOSE_TRIES, closes `failed`. A full batch queues the next sweep at once.
    Returns how many closed (sent or empty)."""
    now = now or timezone.now()
    closed = seen = 0
    while seen < batch:
        size = min(chunk, batch - seen)
        with transaction.atomic():
            due = list(
                Digest.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("recipient__preference")
                .filter(closed_at__isnull=True, closes_at__lte=now)
                .order_by("closes_at", "id")[:size]
            )
            closed += sum(_window_close_or_retry(digest, now=now) for digest in due)
        seen += len(due)
        if len(due) < size:
            return closed
    # A failed window was pushed back, so a full batch of them still makes way for the rest.
    transaction.on_commit(_sweep_again)
    return closed


def _window_close_or_retry(digest: Digest, *, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            return bool(_window_close(digest, now=now))
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # one window's failure must not hold up the others
        logger.exception("digest close failed", extra={"digest_id": str(digest.pk)})
        _window_failed(digest, error=f"{type(exc).__name__}: {exc}", now=now)
        return False


def _window_failed(digest: Digest, *, error: str, now: dt.datetime) -> None:
    """Count the failed try and push the window's close back (5 s, doubling, at most 10
    min), so that it neither blocks the sweep's batch nor stays open for good; after
    CLOSE_TRIES, close it `failed` (its items dead letters: lifecycle)."""
    attempts = digest.close_attempts + 1
    if attempts >= CLOSE_TRIES:
        try:
            with transaction.atomic():
                digest.close_attempts = attempts
                digest_window_fail(digest, error=error, now=now)
                metrics.digest_closed(digest=digest)
                return
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # left open, pushed back: the next try gives up again
            logger.exception("digest not closed failed", extra={"digest_id": str(digest.pk)})
    delay = min(CLOSE_RETRY_FIRST * 2 ** (attempts - 1), CLOSE_RETRY_MAX)
    with transaction.atomic():
        Digest.objects.filter(pk=digest.pk).update(
            close_attempts=attempts, closes_at=now + dt.timedelta(seconds=delay)
        )


def _sweep_again() -> None:
    """More windows are due than one batch: the next sweep now, not at beat's next tick (a
    stale one expires: by then beat's own have swept). If the publish fails, beat sweeps on."""
    try:
        current_app.send_task(SWEEP_TASK, queue=TIMERS_QUEUE, expires=SWEEP_AGAIN_EXPIRES)
    except Exception as exc:  # the rows are the truth; beat's next sweep finds them
        logger.warning("digest sweep not queued again: %s: %s", type(exc).__name__, exc)


def digest_items_cancel(*, notification: Notification, reason: str) -> list[Delivery]:
    """The notification's digest items still in an open window leave it (in the caller's
    transaction). FOR NO KEY UPDATE: a closing digest's event rows may still reference them."""
    items = list(
        Delivery.objects.select_for_update(no_key=True)
        .filter(notification=notification, status=DeliveryStatus.DIGESTED)
        .order_by("id")
    )
    return digest_items_leave(items, reason=reason) if items else []
