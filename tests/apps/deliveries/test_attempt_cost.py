"""What an attempt costs (Attempt.cost_micros, from ANALYTICS_COSTS), worked out where the
batch finishes a call: a message, the SMS body's segments, the push devices that took it in
this call; nothing for a refusal."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
from django.utils import timezone

from apps.deliveries.calls import Call, Prepared, Sent, call_finish
from apps.deliveries.models import Attempt
from apps.deliveries.sending import _record
from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage, SendResult
from tests.factories import DeliveryFactory, DeviceFactory

pytestmark = pytest.mark.django_db

PRICES = {"email": {"sendgrid": "0.0004"}, "sms": {"twilio": "0.0083"}, "push": {"fcm": "0.001"}}


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, message: OutboundMessage) -> SendResult:  # pragma: no cover - not called
        raise NotImplementedError


def _finish(channel: str, provider: str, outcome: Any, body: str = "Hi", **kw: Any) -> Any:
    delivery = DeliveryFactory(channel=channel, status="sending")
    message = OutboundMessage(delivery_id=str(delivery.id), channel=channel, to="x", body=body)
    prepared = Prepared(delivery, contextvars.copy_context(), message=message, **kw)
    now = timezone.now()
    outcome = outcome(delivery) if callable(outcome) else outcome
    return call_finish(Named(provider), prepared, Sent(now, now, 5, outcome))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def prices(settings: Any) -> None:
    settings.ANALYTICS_COSTS = PRICES


def test_an_accepted_email_costs_one_message() -> None:
    assert _finish("email", "sendgrid", SendResult("m-1", 202)).cost_micros == 400


def test_an_sms_costs_its_segments_gsm7_and_ucs2() -> None:
    assert _finish("sms", "twilio", SendResult("SM1"), body="a" * 306).cost_micros == 2 * 8300
    assert _finish("sms", "twilio", SendResult("SM2"), body="a" * 307).cost_micros == 3 * 8300
    assert _finish("sms", "twilio", SendResult("SM3"), body="ж" * 70).cost_micros == 8300
    assert _finish("sms", "twilio", SendResult("SM4"), body="ж" * 71).cost_micros == 2 * 8300


def test_a_refused_attempt_costs_nothing() -> None:
    assert _finish("email", "sendgrid", TransientFailure("503")).cost_micros == 0
    assert _finish("sms", "twilio", PermanentFailure("bad number")).cost_micros == 0
    assert _finish("email", "smtp", SendResult("m-2")).cost_micros == 0  # no price: free


def test_push_costs_the_devices_that_took_it_in_this_call_even_when_others_retry() -> None:
    def outcome(delivery: Any) -> list[Any]:
        devices = [DeviceFactory(recipient=delivery.recipient) for _ in range(3)]
        return [
            (devices[0], SendResult("p-1")),
            (devices[1], SendResult("p-2")),
            (devices[2], TransientFailure("unavailable")),
        ]

    call = _finish("push", "fcm", outcome)

    assert isinstance(call.failure, TransientFailure)  # retried for the third device only
    assert call.cost_micros == 2 * 1000


def test_the_batch_writes_the_cost_and_leaves_free_attempts_out_of_the_fold_queue() -> None:
    now = timezone.now()
    priced = DeliveryFactory(channel="email", status="sending", attempts=1, provider="sendgrid")
    refused = DeliveryFactory(channel="email", status="sending", attempts=1, provider="sendgrid")
    calls = [
        Call(priced, now, now, 5, SendResult("m-1", 202), None, cost_micros=400),
        Call(refused, now, now, 5, None, TransientFailure("503")),
    ]

    outcomes = _record(calls, provider="sendgrid")

    assert {pk: o.result for pk, o in outcomes.items()} == {
        str(priced.id): "sent",
        str(refused.id): "retrying",
    }
    rows = Attempt.objects.order_by("delivery__status").values_list(
        "delivery__status", "outcome", "cost_micros", "counted"
    )
    assert list(rows) == [("retrying", "transient", 0, True), ("sent", "sent", 400, False)]


def _boom(*args: Any, **kwargs: Any) -> int:
    raise ArithmeticError("a price gone wrong")


@pytest.mark.parametrize(
    "bad",
    [
        {"sms": "0.01"},  # set past the settings' parse: not a mapping (was AttributeError)
        {"sms": {"twilio": "abc"}},  # not a decimal (was ValueError)
        {"sms": {"twilio": "1e13"}},  # over the bound (was a bigint overflow in the INSERT)
    ],
)
def test_a_bad_price_at_send_time_costs_0_and_the_send_is_recorded(
    settings: Any, bad: dict[str, Any], caplog: Any
) -> None:
    settings.ANALYTICS_COSTS = bad

    call = _finish("sms", "twilio", SendResult("SM9", 201))
    outcomes = _record([call], provider="twilio")

    assert call.cost_micros == 0
    assert {o.result for o in outcomes.values()} == {"sent"}
    assert list(Attempt.objects.values_list("outcome", "cost_micros", "counted")) == [
        ("sent", 0, True)
    ]
    assert "attempt cost not computed" in caplog.text


def test_a_cost_function_that_raises_costs_0_and_the_send_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("apps.deliveries.calls.cost_micros", _boom)

    call = _finish("email", "sendgrid", SendResult("m-9", 202))
    outcomes = _record([call], provider="sendgrid")

    assert (call.cost_micros, call.result, call.failure) == (0, SendResult("m-9", 202), None)
    assert {o.result for o in outcomes.values()} == {"sent"}
    assert list(Attempt.objects.values_list("outcome", "cost_micros")) == [("sent", 0)]
