"""One provider call for one delivery inside a send batch, in three steps: prepared in the
batch's thread (rendered, push devices looked up: the database), run wherever the provider's
calls run (the provider only, never the database: apps/deliveries/inflight.py), finished in
the batch's thread again (push devices deactivated, metrics). Failures are classified on the
way, so that one delivery's trouble never costs the batch the records of the others."""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import time
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from apps.core import metrics
from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.compose import delivery_message
from apps.deliveries.models import Attempt, Delivery
from apps.deliveries.push import DeviceResults, push_send, push_settle, push_targets
from apps.recipients.models import Device
from notifier.channels import spec
from notifier.costs import cost_micros, cost_units
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
    # What the provider charges for what it accepted in this call (Attempt.cost_micros).
    cost_micros: int = 0


@dataclass
class Prepared:
    """A delivery ready for its provider call, or (`call` set) already failed before it."""

    delivery: Delivery
    context: contextvars.Context  # the delivery's log context, for every step of its call
    message: OutboundMessage | None = None
    devices: list[Device] | None = None  # push: the devices still without it
    call: Call | None = None


@dataclass
class Sent:
    """What the provider call came to, before the batch's thread looks at it."""

    started: dt.datetime
    finished: dt.datetime
    latency_ms: int
    outcome: SendResult | DeliveryFailure | DeviceResults
    worker_error: bool = False


def call_prepare(provider: Provider, delivery: Delivery) -> Prepared:
    """Render the delivery (and find its push devices). The database or Redis failing here is
    raised: not an attempt, the batch hands the delivery back and the task's own retry takes it
    (tasks.py). Anything else that fails is the delivery's failure, before any provider call."""
    with log_context_scope():
        metrics.attempt_started(delivery=delivery, provider=provider.name)
        started = timezone.now()
        failure: DeliveryFailure | None = None
        stop = worker_error = False
        prepared = Prepared(delivery, contextvars.copy_context())
        try:
            prepared.message = delivery_message(delivery=delivery)
            if spec(delivery.channel).per_device:
                prepared.devices = push_targets(delivery=delivery)
        except DEPENDENCY_ERRORS:
            raise
        except DeliveryFailure as exc:
            failure = exc
        except SoftTimeLimitExceeded:
            failure, stop, worker_error = TransientFailure("worker time limit"), True, True
        except Exception as exc:  # a bug here must not cost the batch its records
            logger.exception("send failed unexpectedly")
            failure = TransientFailure("worker error", detail=repr(exc)[:300])
            worker_error = True
        else:
            return prepared
    delivery.provider = provider.name
    prepared.call = Call(delivery, started, timezone.now(), 0, None, failure, stop, worker_error)
    return prepared


def call_run(provider: Provider, prepared: Prepared) -> Sent:
    """The provider call itself (each device's, for push). Never touches the database: it runs
    on the provider's own threads, which hold no database connection."""
    assert prepared.message is not None  # noqa: S101 - call_prepare set it, or set `call`
    started = timezone.now()
    clock = time.perf_counter()
    outcome: SendResult | DeliveryFailure | DeviceResults
    worker_error = False
    try:
        if prepared.devices is not None:
            outcome = push_send(
                provider=provider, message=prepared.message, devices=prepared.devices
            )
        else:
            outcome = provider.send(prepared.message)
    except DeliveryFailure as exc:
        outcome = exc
    except Exception as exc:  # a bug (ours or the SDK's) must not cost the batch its records
        logger.exception("send failed unexpectedly")
        outcome = TransientFailure("worker error", detail=repr(exc)[:300])
        worker_error = True
    latency_ms = int((time.perf_counter() - clock) * 1000)
    return Sent(started, timezone.now(), latency_ms, outcome, worker_error)


def sent_failure(sent: Sent) -> DeliveryFailure | None:
    """The call's failure as the provider's breaker should hear it (push: a device's transient
    failure makes the delivery's, see push.py), None if the provider took it."""
    outcome = sent.outcome
    if isinstance(outcome, list):
        transient = [r for _, r in outcome if isinstance(r, TransientFailure)]
        return transient[0] if transient else None
    return outcome if isinstance(outcome, DeliveryFailure) else None


def call_finish(provider: Provider, prepared: Prepared, sent: Sent) -> Call:
    """The call's outcome for the batch to record (push: rolled up over the devices, dead
    tokens deactivated)."""
    delivery = prepared.delivery
    result: SendResult | None = None
    failure: DeliveryFailure | None = None
    worker_error = sent.worker_error
    outcome = sent.outcome
    if isinstance(outcome, list):
        assert prepared.message is not None  # noqa: S101 - it was sent
        try:
            result = push_settle(delivery=delivery, message=prepared.message, results=outcome)
        except DeliveryFailure as exc:
            failure = exc
        except Exception as exc:  # the sends happened: their outcome must still be recorded
            logger.exception("push outcome not settled")
            failure = TransientFailure("worker error", detail=repr(exc)[:300])
            worker_error = True
    elif isinstance(outcome, SendResult):
        result = outcome
    else:
        failure = outcome
    metrics.provider_called(
        provider=provider.name, outcome=attempt_outcome(failure), seconds=sent.latency_ms / 1000
    )
    delivery.provider = provider.name
    call = Call(
        delivery, sent.started, sent.finished, sent.latency_ms, result, failure, False, worker_error
    )
    call.cost_micros = _cost(provider, prepared, outcome)
    return call


def _cost(
    provider: Provider, prepared: Prepared, outcome: SendResult | DeliveryFailure | DeviceResults
) -> int:
    """What the provider accepted in this call, priced (ANALYTICS_COSTS; notifier/costs.py):
    nothing for a refusal; push counts the devices that took it in this call, which a partial
    send (retried for the others) charges too, since a retry never sends to them again.
    Never raises: the provider has the message, so its record must be written whatever the
    price (checked at settings load; a price that still fails is logged and costs 0)."""
    if isinstance(outcome, DeliveryFailure) or prepared.message is None:
        return 0
    try:
        devices = (
            sum(isinstance(r, SendResult) for _, r in outcome) if isinstance(outcome, list) else 1
        )
        units = cost_units(prepared.delivery.channel, body=prepared.message.body, devices=devices)
        return cost_micros(
            settings.ANALYTICS_COSTS,
            channel=prepared.delivery.channel,
            provider=provider.name,
            units=units,
        )
    except Exception:
        logger.exception("attempt cost not computed (ANALYTICS_COSTS?): recorded as 0")
        return 0


def attempt_outcome(failure: DeliveryFailure | None) -> str:
    if failure is None:
        return Attempt.Outcome.SENT
    if isinstance(failure, TransientFailure):
        return Attempt.Outcome.TRANSIENT
    return Attempt.Outcome.PERMANENT
