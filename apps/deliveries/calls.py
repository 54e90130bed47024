"""One provider call for one delivery inside a send batch, its failures classified."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.compose import delivery_message
from apps.deliveries.models import Attempt, Delivery
from apps.deliveries.push import provider_send
from notifier.errors import DeliveryFailure, TransientFailure
from notifier.logcontext import log_context_scope
from notifier.providers.base import OutboundMessage, Provider, SendResult

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One provider call for one delivery, kept until the batch is recorded."""

    delivery: Delivery
    started: dt.datetime
    finished: dt.datetime
    latency_ms: int
    result: SendResult | None
    failure: DeliveryFailure | None
    stop: bool = False  # the task's time is up: send no more in this batch
    worker_error: bool = False  # failed on our side, not the provider's: not the breaker's


def provider_call(provider: Provider, delivery: Delivery) -> Call:
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
        provider=provider.name, outcome=attempt_outcome(failure), seconds=latency_ms / 1000
    )
    delivery.provider = provider.name
    return Call(delivery, started, timezone.now(), latency_ms, result, failure, stop, worker_error)


def attempt_outcome(failure: DeliveryFailure | None) -> str:
    if failure is None:
        return Attempt.Outcome.SENT
    if isinstance(failure, TransientFailure):
        return Attempt.Outcome.TRANSIENT
    return Attempt.Outcome.PERMANENT
