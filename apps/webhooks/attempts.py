"""One attempt at a webhook message: claim it (a lease in the row), ask the endpoint's breaker,
check the URL's addresses again, sign, POST, and record how it went: delivered, a retry (by
`next_attempt_at` in the row; a short one also published with a countdown, a long one left to
the beat sweep), or dead after the last attempt. An endpoint failing every attempt for
WEBHOOKS_DISABLE_AFTER_SECONDS is disabled (alerts.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from functools import lru_cache

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import metrics
from apps.core.broker import service_client
from apps.webhooks.addresses import ResolverBusy, UnsafeUrl, target_for_send
from apps.webhooks.alerts import endpoint_disable_if_failing
from apps.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.publish import deliveries_publish
from apps.webhooks.redis_guard import guarded
from apps.webhooks.signing import signed_headers, signing_secrets
from apps.webhooks.slots import slot_give_back, slot_take
from apps.webhooks.transport import Answer, post
from notifier.breaker import CircuitBreaker, Permit

logger = logging.getLogger(__name__)

M = MessageStatus
# An attempt holds its message for twice its deadline (WEBHOOKS_TIMEOUT_SECONDS, which the
# transport enforces) and this much more: the lease never runs out under a live attempt (its
# recording included); a worker that died mid-attempt leaves it `sending` until then, and the
# sweep hands it back.
LEASE_MARGIN_SECONDS = 30.0
# A retry due sooner than this is published with a countdown; a later one waits for the sweep
# (hours-long countdowns would outlive the broker's visibility timeout).
COUNTDOWN_MAX_SECONDS = 60.0
# A message may be claimed this early (a countdown's timer firing a little ahead).
CLAIM_EARLY_SECONDS = 1.0
# An attempt deferred because Redis (breaker, slots) failed waits between this and twice it.
REDIS_WAIT_SECONDS = 10.0
# Retry-After is honoured up to the schedule's longest delay.
JITTER = 0.2


def max_attempts() -> int:
    return len(settings.WEBHOOKS_RETRY_SCHEDULE) + 1


def retry_delay(attempt: int, *, retry_after: float | None) -> float:
    """Seconds before the attempt after `attempt` (1-based): the schedule's delay, +-20%
    jitter, and no sooner than the receiver's Retry-After (capped at the longest delay)."""
    schedule = [float(s) for s in settings.WEBHOOKS_RETRY_SCHEDULE] or [5.0]
    base = schedule[min(attempt, len(schedule)) - 1]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter, not crypto
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay


def _jittered(seconds: float) -> float:
    """Between `seconds` and twice it: deferred messages of one backlog do not come back
    together."""
    return seconds * random.uniform(1.0, 2.0)  # noqa: S311 - jitter, not crypto


def _probe_unused(breaker: CircuitBreaker, permit: Permit) -> None:
    if not permit.probe:
        return
    try:
        with guarded():
            breaker.release_probe()
    except redis.RedisError:  # it runs out with its hold
        logger.warning("webhook breaker probe not given back", exc_info=True)


def lease_seconds() -> float:
    return 2 * float(settings.WEBHOOKS_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS


@lru_cache(maxsize=1024)
def endpoint_breaker(endpoint_id: str) -> CircuitBreaker:
    """The endpoint's own breaker, shared by every webhook worker (notifier.breaker, Redis)."""
    return CircuitBreaker(
        service_client(fail_fast=True),
        f"webhook:{endpoint_id}",
        failure_threshold=settings.WEBHOOKS_BREAKER_FAILURES,
        open_seconds=settings.WEBHOOKS_BREAKER_OPEN_SECONDS,
        probe_timeout_seconds=lease_seconds(),
    )


def _tell_breaker(breaker: CircuitBreaker, answer: Answer) -> None:
    try:
        with guarded():
            if answer.ok:
                breaker.record_success()
            elif breaker.record_failure():
                logger.warning("webhook endpoint breaker opened", extra={"breaker": breaker.name})
    except redis.RedisError:
        logger.warning("webhook breaker unavailable; this answer not told", exc_info=True)


def message_claim(*, message_id: int, now: dt.datetime) -> WebhookMessage | None:
    """Take a due `pending` message for one attempt (one guarded UPDATE: a duplicate task, or
    one whose message another worker holds, gets None)."""
    lease = lease_seconds()
    taken = WebhookMessage.objects.filter(
        pk=message_id,
        state=M.PENDING,
        next_attempt_at__lte=now + dt.timedelta(seconds=CLAIM_EARLY_SECONDS),
    ).update(
        state=M.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now + dt.timedelta(seconds=lease),
    )
    if not taken:
        return None
    return WebhookMessage.objects.select_related("endpoint").get(pk=message_id)


def message_attempt(*, message_id: int) -> str:
    """Attempt the message once; what became of it (`delivered`, `pending` for a retry or a
    wait, `dead`, or `not_claimed`)."""
    now = timezone.now()
    message = message_claim(message_id=message_id, now=now)
    if message is None:
        return "not_claimed"
    endpoint = message.endpoint
    if not endpoint.enabled:
        return _settle(message, M.DEAD, error="endpoint disabled", now=now)
    breaker = endpoint_breaker(str(endpoint.pk))
    try:
        with guarded():
            permit = breaker.allow()
        if not permit.allowed:
            return _wait(message, seconds=max(permit.wait, 1.0), now=now)
        slot = slot_take(str(endpoint.pk), hold_seconds=lease_seconds())
    except redis.RedisError:  # no breaker or slots: later, rather than past the lease
        logger.warning("webhook attempt deferred: Redis unavailable", exc_info=True)
        return _wait(message, seconds=_jittered(REDIS_WAIT_SECONDS), now=now)
    if slot is None:  # the endpoint has its limit of attempts under way: a slot frees within
        metrics.webhook_attempt_throttled()  # an attempt's deadline, so about that much later
        _probe_unused(breaker, permit)
        return _wait(message, seconds=_jittered(float(settings.WEBHOOKS_TIMEOUT_SECONDS)), now=now)
    try:
        answer = _send(endpoint, message, now=now)
    except ResolverBusy:  # nothing learnt of the receiver: not its failure
        logger.warning("webhook attempt deferred: every DNS lookup thread busy")
        _probe_unused(breaker, permit)
        return _wait(message, seconds=_jittered(float(settings.WEBHOOKS_TIMEOUT_SECONDS)), now=now)
    except Exception as exc:  # a bug of ours or a library's: a failed attempt, never stuck
        logger.exception("webhook attempt failed unexpectedly")
        error = f"{type(exc).__name__}: {exc}"
        answer = Answer(ok=False, status_code=None, duration_ms=0, error=error)
    finally:
        slot_give_back(str(endpoint.pk), slot)
    _tell_breaker(breaker, answer)
    outcome = attempt_record(message, answer, started=now)
    if slot:
        next_in_line_dispatch(endpoint_id=endpoint.pk)
    return outcome


def next_in_line_dispatch(*, endpoint_id: uuid.UUID) -> None:
    """The slot just given back goes to the endpoint's oldest due message left undispatched
    (dispatch.py publishes no more than an endpoint's free slots): a busy endpoint's slots stay
    in use between the sweeps. Claimed FOR UPDATE SKIP LOCKED: two workers never take one row."""
    now = timezone.now()
    with transaction.atomic():
        nxt = list(
            WebhookMessage.objects.select_for_update(skip_locked=True)
            .filter(
                endpoint_id=endpoint_id,
                state=M.PENDING,
                dispatched_at__isnull=True,
                next_attempt_at__lte=now,
            )
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:1]
        )
        if nxt:
            WebhookMessage.objects.filter(pk=nxt[0]).update(dispatched_at=now)
            transaction.on_commit(lambda: deliveries_publish(nxt))


def _send(endpoint: WebhookEndpoint, message: WebhookMessage, *, now: dt.datetime) -> Answer:
    """The attempt, its DNS lookup included, done within WEBHOOKS_TIMEOUT_SECONDS."""
    timeout = float(settings.WEBHOOKS_TIMEOUT_SECONDS)
    started = time.monotonic()
    deadline = started + timeout
    try:
        target = target_for_send(endpoint.url, timeout=timeout)
    except ResolverBusy:
        raise
    except UnsafeUrl as exc:
        took = int((time.monotonic() - started) * 1000)
        return Answer(ok=False, status_code=None, duration_ms=took, error=f"refused: {exc}")
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
    secrets_ = signing_secrets(
        secret=endpoint.secret,
        previous=endpoint.previous_secret,
        previous_expires_at=endpoint.previous_secret_expires_at,
        now=now,
    )
    headers = signed_headers(event_id=message.event_id, body=body, secrets_=secrets_, now=now)
    return post(target, body=body, headers=headers, timeout=timeout, deadline=deadline)


def attempt_record(message: WebhookMessage, answer: Answer, *, started: dt.datetime) -> str:
    """The attempt's row, and the message delivered, retried or dead; the endpoint's failing
    streak ended, or begun (and past WEBHOOKS_DISABLE_AFTER_SECONDS, the endpoint disabled)."""
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            message=message,
            endpoint_id=message.endpoint_id,
            number=message.attempts,
            started_at=started,
            duration_ms=answer.duration_ms,
            status_code=answer.status_code,
            ok=answer.ok,
            error=answer.error[:500],
            response_excerpt=answer.excerpt,
        )
        endpoints = WebhookEndpoint.objects.filter(pk=message.endpoint_id)
        if answer.ok:
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
            return _settle(message, M.DELIVERED, error="", now=now)
        endpoints.filter(failing_since__isnull=True).update(failing_since=started)
        endpoint_disable_if_failing(endpoint_id=message.endpoint_id, now=now)
        error = answer.error or f"HTTP {answer.status_code}"
        if message.attempts >= max_attempts():
            return _settle(message, M.DEAD, error=f"attempts exhausted; last: {error}", now=now)
        delay = retry_delay(message.attempts, retry_after=answer.retry_after)
        return _settle(message, M.PENDING, error=error, now=now, delay=delay)


def _wait(message: WebhookMessage, *, seconds: float, now: dt.datetime) -> str:
    """Not attempted (the breaker open, the endpoint's slots taken, Redis failing): back to
    `pending` after `seconds`, uncounted."""
    return _settle(message, M.PENDING, error="", now=now, delay=seconds, uncount=True)


def _settle(
    message: WebhookMessage,
    status: MessageStatus,
    *,
    error: str,
    now: dt.datetime,
    delay: float = 0.0,
    uncount: bool = False,
) -> str:
    """Write the message's next state, if this attempt still holds it (its lease)."""
    values: dict[str, object] = {"state": status}
    if error or status != M.PENDING:
        values["last_error"] = error[:500]
    if status == M.DELIVERED:
        values["delivered_at"] = now
    if uncount:
        values["attempts"] = F("attempts") - 1
    due = now + dt.timedelta(seconds=delay)
    if status == M.PENDING:
        values["next_attempt_at"] = due
        values["dispatched_at"] = due if delay <= COUNTDOWN_MAX_SECONDS else None
    held = WebhookMessage.objects.filter(pk=message.pk, state=M.SENDING, attempts=message.attempts)
    if held.update(**values) and status == M.PENDING and delay <= COUNTDOWN_MAX_SECONDS:
        transaction.on_commit(lambda: deliveries_publish([message.pk], countdown=delay))
    return str(status)
