"""Prometheus metrics of the delivery pipeline, and the one-line hooks that move them.

Web and workers each keep their own counters: the web serves them at `/metrics` (with
django-prometheus's HTTP and database metrics and the scrape-time collectors of
`apps.ops.collectors`), each worker on `WORKER_METRICS_PORT` (see `apps.core.observability`).
With `PROMETHEUS_MULTIPROC_DIR` set (several web or prefork processes), prometheus-client's
multiprocess mode sums the processes of one host.

The hooks also write the structured log line of the event, so the pipeline code calls one
function per event.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from notifier.channels import spec
from notifier.logcontext import log_context_bind


# What the hooks read of apps.deliveries' rows, described here rather than imported: apps.core
# is the foundation and imports no other app.
class Notification(Protocol):
    id: Any
    priority: Any
    channels: Any
    template: Any


class Delivery(Protocol):
    id: Any
    notification_id: Any
    recipient: Any
    channel: Any
    priority: Any
    provider: Any
    attempts: Any
    created_at: Any
    sent_at: Any
    status: Any


logger = logging.getLogger("notifier.events")

# Provider calls: tens of milliseconds to the provider timeout (10 s by default).
PROVIDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Accept -> sent includes queueing and retries: a second to an hour.
ACCEPT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

NOTIFICATIONS_RECEIVED = Counter(
    "notifier_notifications_received",
    "Deliveries accepted by the API (one per recipient and channel of a notification).",
    ["channel", "priority"],
)
DELIVERIES_FINISHED = Counter(
    "notifier_deliveries_finished",
    "Deliveries that reached a final status in a worker (sent, dead, skipped).",
    ["channel", "provider", "status"],
)
PROVIDER_REQUEST_SECONDS = Histogram(
    "notifier_provider_request_seconds",
    "Latency of one provider call, by outcome (sent, transient, permanent).",
    ["provider", "outcome"],
    buckets=PROVIDER_BUCKETS,
)
ACCEPT_TO_SENT_SECONDS = Histogram(
    "notifier_accept_to_sent_seconds",
    "Time from the API accepting a delivery to the provider accepting it.",
    ["channel"],
    buckets=ACCEPT_BUCKETS,
)
RETRIES = Counter(
    "notifier_retries",
    "Retries scheduled after a transient failure, by failure reason.",
    ["channel", "reason"],
)
DEAD_LETTERS_CREATED = Counter(
    "notifier_dead_letters_created",
    "Dead letters created (kind: permanent or exhausted).",
    ["channel", "kind"],
)
DEAD_LETTERS_REPLAYED = Counter(
    "notifier_dead_letters_replayed", "Dead letters replayed by an operator.", ["channel"]
)
RATE_LIMIT_WAITS = Counter(
    "notifier_rate_limit_waits",
    "Sends postponed because the provider's token bucket was empty.",
    ["provider"],
)
BREAKER_REJECTIONS = Counter(
    "notifier_breaker_rejections",
    "Sends postponed or failed over because the provider's circuit breaker was open.",
    ["provider"],
)
WORKFLOW_THROTTLED = Counter(
    "notifier_throttled",
    "Deliveries skipped at creation because their throttle's limit was reached.",
    ["channel"],
)
ESCALATION_STEPS = Counter(
    "notifier_escalation_steps",
    "Escalation step deliveries: scheduled, released (sent on), or stood down (engaged).",
    ["channel", "outcome"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "notifier_websocket_connections",
    "WebSocket connections open on this process.",
    multiprocess_mode="livesum",
)
INBOX_STREAMS = Gauge(
    "notifier_inbox_streams",
    "Inbox event streams (SSE) open on this process.",
    multiprocess_mode="livesum",
)
PROVIDER_IN_FLIGHT = Gauge(
    "notifier_provider_in_flight",
    "Provider calls in flight from this process (at most the provider's PROVIDER_MAX_IN_FLIGHT).",
    ["provider"],
    multiprocess_mode="livesum",
)
DIGESTS = Counter(
    "notifier_digests",
    "Digest windows opened and closed (outcome: opened, sent, empty).",
    ["channel", "outcome"],
)
DIGEST_ITEMS = Counter(
    "notifier_digest_items",
    "Deliveries that joined a digest window instead of being sent on their own.",
    ["channel"],
)
RETENTION_PURGED = Counter(
    "notifier_retention_purged", "Rows deleted by the retention purge.", ["table"]
)
EVENTS_DROPPED = Counter(
    "notifier_events_dropped",
    "Announcements of a change that a listener failed to record (the change itself stands): "
    "a signal receiver that raised (1 per call), webhook messages not written (1 per message).",
    ["receiver"],
)
WEBHOOK_ATTEMPTS_THROTTLED = Counter(
    "notifier_webhook_attempts_throttled",
    "Webhook attempts put back because their endpoint had WEBHOOKS_MAX_IN_FLIGHT under way.",
)


def _record(callback: Callable[[], None]) -> None:
    """Count now. The hooks run at the end of their service's transaction, after every write
    that can fail; deferring to on_commit would add callbacks that tests of enqueueing count."""
    callback()


def notification_accepted(*, notification: Notification, deliveries: Iterable[Delivery]) -> None:
    """The API created this notification's deliveries (counted when the transaction commits)."""
    deliveries = list(deliveries)
    tally = Tally((d.channel, d.priority) for d in deliveries)

    def record() -> None:
        for (channel, priority), count in tally.items():
            _received(str(channel), str(priority)).inc(count)

    _record(record)
    if not logger.isEnabledFor(logging.INFO):  # its fields cost more than the counting
        return
    logger.info(
        "notification accepted",
        extra={
            "notification_id": str(notification.id),
            "template": notification.template.key,
            "priority": notification.priority,
            "channels": list(notification.channels),
            "recipients": sorted({d.recipient.external_id for d in deliveries})[:20],
            "deliveries": {d.channel: d.status for d in deliveries[:50]},
        },
    )


# NOTIFICATIONS_RECEIVED's child per (channel, priority), as `labels` returns it (the same
# object each time): on every POST, without `labels`' checks and conversions of the values.
_RECEIVED: dict[tuple[str, str], Any] = {}


def _received(channel: str, priority: str) -> Any:
    child = _RECEIVED.get((channel, priority))
    if child is None:
        child = _RECEIVED[channel, priority] = NOTIFICATIONS_RECEIVED.labels(
            channel=channel, priority=priority
        )
    return child


def deliveries_throttled(*, deliveries: Iterable[Delivery]) -> None:
    """Deliveries skipped at creation by their throttle."""
    tally = Tally(d.channel for d in deliveries)
    for channel, count in tally.items():
        WORKFLOW_THROTTLED.labels(channel=channel).inc(count)
    if tally:
        logger.info("deliveries throttled", extra={"channels": dict(tally)})


def escalation_steps(*, deliveries: Iterable[Delivery], outcome: str) -> None:
    """Escalation steps `scheduled`, `released` after their delay, or stood down (`engaged`)."""
    tally = Tally(d.channel for d in deliveries)
    for channel, count in tally.items():
        ESCALATION_STEPS.labels(channel=channel, outcome=outcome).inc(count)
    if tally and outcome != "scheduled":
        logger.info(f"escalation steps {outcome}", extra={"channels": dict(tally)})


def attempt_started(*, delivery: Delivery, provider: str) -> None:
    """Bind the delivery to every log line of this attempt, and log the attempt."""
    log_context_bind(**{**_fields(delivery), "provider": provider})
    logger.info("attempt started", extra={"to": _address(delivery)})


def provider_in_flight(*, provider: str) -> AbstractContextManager[None]:
    """Count a provider call in flight for as long as the block runs."""
    return PROVIDER_IN_FLIGHT.labels(provider=provider).track_inprogress()


def provider_called(*, provider: str, outcome: str, seconds: float) -> None:
    """One provider call finished (outcome: sent, transient, permanent)."""
    PROVIDER_REQUEST_SECONDS.labels(provider=provider, outcome=outcome).observe(seconds)


def delivery_sent(*, delivery: Delivery) -> None:
    """The provider accepted the delivery: final status, accept->sent latency, a log line."""
    accepted_at = delivery.created_at
    sent_at = delivery.sent_at
    latency = (sent_at - accepted_at).total_seconds() if sent_at and accepted_at else 0.0
    channel, provider = delivery.channel, delivery.provider

    def record() -> None:
        DELIVERIES_FINISHED.labels(channel=channel, provider=provider, status="sent").inc()
        ACCEPT_TO_SENT_SECONDS.labels(channel=channel).observe(max(latency, 0.0))

    _record(record)
    logger.info(
        "delivery sent",
        extra={
            **_fields(delivery),
            "to": _address(delivery),
            "latency_seconds": round(latency, 3),
        },
    )


def delivery_retrying(*, delivery: Delivery, reason: str, delay: float) -> None:
    """A transient failure: another attempt in `delay` seconds."""
    channel = delivery.channel
    _record(lambda: RETRIES.labels(channel=channel, reason=reason).inc())
    logger.warning(
        "delivery retrying",
        extra={**_fields(delivery), "reason": reason, "retry_in_seconds": round(delay, 3)},
    )


def delivery_dead(*, delivery: Delivery, reason: str, permanent: bool) -> None:
    """The delivery is dead and has a dead letter."""
    channel, provider = delivery.channel, delivery.provider
    kind = "permanent" if permanent else "exhausted"

    def record() -> None:
        DELIVERIES_FINISHED.labels(channel=channel, provider=provider, status="dead").inc()
        DEAD_LETTERS_CREATED.labels(channel=channel, kind=kind).inc()

    _record(record)
    logger.error(
        "delivery dead",
        extra={**_fields(delivery), "to": _address(delivery), "reason": reason, "kind": kind},
    )


def delivery_skipped(*, delivery: Delivery, reason: str) -> None:
    """Re-checked just before sending and skipped (opted out, suppressed, no address)."""
    channel = delivery.channel
    _record(
        lambda: DELIVERIES_FINISHED.labels(channel=channel, provider="", status="skipped").inc()
    )
    logger.info("delivery skipped", extra={**_fields(delivery), "reason": reason})


def dead_letters_replayed(*, channels: Iterable[str]) -> None:
    """Operators replayed dead letters of these channels (one entry per dead letter)."""
    tally = Tally(channels)

    def record() -> None:
        for channel, count in tally.items():
            DEAD_LETTERS_REPLAYED.labels(channel=channel).inc(count)

    _record(record)


def rate_limit_waited(*, provider: str) -> None:
    """A send was postponed by the provider's rate limit (not an attempt)."""
    RATE_LIMIT_WAITS.labels(provider=provider).inc()


def breaker_rejected(*, provider: str) -> None:
    """A send met the provider's open circuit breaker (not an attempt)."""
    BREAKER_REJECTIONS.labels(provider=provider).inc()


def websocket_opened() -> None:
    WEBSOCKET_CONNECTIONS.inc()


def websocket_closed() -> None:
    WEBSOCKET_CONNECTIONS.dec()


def inbox_stream_opened() -> None:
    INBOX_STREAMS.inc()


def inbox_stream_closed() -> None:
    INBOX_STREAMS.dec()


def retention_purged(*, table: str, count: int) -> None:
    if count:
        RETENTION_PURGED.labels(table=table).inc(count)


def events_dropped(*, receiver: str, count: int = 1) -> None:
    """A listener dropped the announcement of a change (apps.core.signals, the webhooks' outbox)."""
    EVENTS_DROPPED.labels(receiver=receiver).inc(count)


def webhook_attempt_throttled() -> None:
    WEBHOOK_ATTEMPTS_THROTTLED.inc()


class Digest(Protocol):
    id: Any
    channel: Any
    outcome: Any
    item_count: Any


def digest_items_joined(*, deliveries: Iterable[Delivery]) -> None:
    """New deliveries joined digest windows (counted now, like the API's accepted count)."""
    tally = Tally(d.channel for d in deliveries)

    def record() -> None:
        for channel, count in tally.items():
            DIGEST_ITEMS.labels(channel=channel).inc(count)

    _record(record)


def digest_opened(*, digest: Digest) -> None:
    _record(lambda: DIGESTS.labels(channel=digest.channel, outcome="opened").inc())


def digest_closed(*, digest: Digest) -> None:
    """A window closed: sent as one delivery, or empty (every item cancelled)."""
    _record(lambda: DIGESTS.labels(channel=digest.channel, outcome=digest.outcome).inc())
    logger.info(
        "digest closed",
        extra={"digest_id": str(digest.id), "outcome": digest.outcome, "items": digest.item_count},
    )


def _fields(delivery: Delivery) -> dict[str, object]:
    fields: dict[str, object] = {
        "notification_id": str(delivery.notification_id),
        "delivery_id": str(delivery.id),
        "channel": delivery.channel,
        "provider": delivery.provider,
    }
    if isinstance(delivery.attempts, int):  # an F() expression while an update is pending
        fields["attempt"] = delivery.attempts
    return fields


def _address(delivery: Delivery) -> str:
    """The recipient's address for this channel: the log filter masks it in the line."""
    return spec(delivery.channel).contact(delivery.recipient)
