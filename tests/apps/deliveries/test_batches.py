"""A send message carries a batch: claimed together, sent one by one, recorded together, and
each delivery still gets exactly its own outcome (in-process, real PostgreSQL and Redis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from apps.deliveries import sending
from apps.deliveries.guards import provider_breaker, provider_bucket
from apps.deliveries.lifecycle import deliveries_claim
from apps.deliveries.models import Attempt, DeadLetter, Delivery, DeliveryStatus
from apps.deliveries.providers import provider_for
from apps.deliveries.queueing import send_batches
from apps.deliveries.sending import deliveries_attempt
from notifier.errors import PermanentFailure, TransientFailure
from notifier.providers.base import OutboundMessage, SendResult
from tests.factories import DeliveryFactory, DeviceFactory, NotificationFactory
from tests.support.queues import queued_delivery_counts

pytestmark = [pytest.mark.django_db]

Script = dict[int, Callable[[OutboundMessage], SendResult]]


@pytest.fixture
def email(settings: Any, clean_redis: redis.Redis) -> Iterator[str]:
    """The in-process email provider (console), fresh guards."""
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.PROVIDER_RATE_PER_SECOND = {}
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()
    yield provider_for("email").name
    provider_breaker.cache_clear()
    provider_bucket.cache_clear()


def batch(count: int) -> list[Delivery]:
    notification = NotificationFactory()
    return [DeliveryFactory(notification=notification) for _ in range(count)]


def scripted(monkeypatch: pytest.MonkeyPatch, deliveries: list[Delivery], script: Script) -> None:
    """The provider answers the n-th delivery of the batch as `script[n]` says, else accepts."""
    position = {str(d.id): n for n, d in enumerate(deliveries)}

    def send(message: OutboundMessage) -> SendResult:
        answer = script.get(position[message.delivery_id])
        if answer is not None:
            return answer(message)
        return SendResult(provider_message_id=f"msg-{message.delivery_id}", status_code=202)

    monkeypatch.setattr(provider_for("email"), "send", send)


def fail(exc: Exception) -> Callable[[OutboundMessage], SendResult]:
    def answer(message: OutboundMessage) -> SendResult:
        raise exc

    return answer


def attempt(deliveries: list[Delivery]) -> dict[str, str]:
    outcomes = deliveries_attempt(delivery_ids=[str(d.id) for d in deliveries])
    return {pk: outcome.result for pk, outcome in outcomes.items()}


def queued_now() -> dict[str, int]:
    """Deliveries in the send messages waiting in the broker, per queue."""
    return queued_delivery_counts(redis.Redis.from_url(django_settings.CELERY_BROKER_URL))


def statuses(deliveries: list[Delivery]) -> list[tuple[str, int, int]]:
    """(status, attempts counter, Attempt rows) per delivery, in batch order."""
    rows = {d.id: d for d in Delivery.objects.filter(id__in=[d.id for d in deliveries])}
    return [
        (rows[d.id].status, rows[d.id].attempts, Attempt.objects.filter(delivery=d).count())
        for d in deliveries
    ]


def test_each_delivery_of_a_batch_gets_its_own_outcome(
    email: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    deliveries = batch(5)
    scripted(
        monkeypatch,
        deliveries,
        {
            1: fail(TransientFailure("http 503", status_code=503)),
            3: fail(PermanentFailure("invalid address", status_code=400)),
        },
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["sent", "retrying", "sent", "dead", "sent"]
    assert statuses(deliveries) == [
        ("sent", 1, 1),
        ("retrying", 1, 1),
        ("sent", 1, 1),
        ("dead", 1, 1),
        ("sent", 1, 1),
    ]
    sent = Delivery.objects.get(id=deliveries[2].id)
    assert sent.provider == email
    assert sent.provider_message_id == f"msg-{sent.id}"
    assert sent.events.filter(status="sent", detail=f"accepted by {email}").count() == 1
    assert DeadLetter.objects.filter(delivery=deliveries[3]).count() == 1
    # only the retry is published again (with its countdown)
    assert queued_now() == {"email.normal": 1}


def test_a_batch_costs_the_same_statements_as_a_single_send(
    email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, twenty = batch(1), batch(20)
    scripted(monkeypatch, one + twenty, {})

    with CaptureQueriesContext(connection) as single:
        attempt(one)
    with CaptureQueriesContext(connection) as batched:
        attempt(twenty)

    assert [s for s, _, _ in statuses(twenty)] == ["sent"] * 20
    # A few more for the batch (row locks for the claim and the outcome, BEGIN/COMMIT), never
    # a set per delivery.
    assert len(batched) <= len(single) + 4, "\n".join(
        q["sql"][:150] for q in batched.captured_queries
    )


def test_a_single_delivery_is_claimed_in_one_statement() -> None:
    """Retries and single sends travel one per message: their claim is the guarded UPDATE
    alone, no transaction and row locks around it (a batch needs those against deadlocks)."""
    (delivery,) = batch(1)

    with CaptureQueriesContext(connection) as claim:
        taken = deliveries_claim(delivery_ids=[str(delivery.id)])

    assert taken == {str(delivery.id)}
    assert [q["sql"].split()[0] for q in claim.captured_queries] == ["UPDATE"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENDING, 1)
    # Claimed already: a second claim takes nothing.
    assert deliveries_claim(delivery_ids=[str(delivery.id)]) == set()


def test_an_opening_breaker_hands_the_rest_of_the_batch_back_unattempted(
    email: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    deliveries = batch(5)
    down = fail(TransientFailure("http 503", status_code=503))
    scripted(monkeypatch, deliveries, dict.fromkeys(range(5), down))

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    # The second failure opens the breaker (threshold 2): the other three are not tried
    assert list(outcomes.values()) == ["retrying", "retrying", "waiting", "waiting", "waiting"]
    assert statuses(deliveries) == [
        ("retrying", 1, 1),
        ("retrying", 1, 1),
        ("queued", 0, 0),
        ("queued", 0, 0),
        ("queued", 0, 0),
    ]
    assert provider_breaker(email).state() == "open"
    assert queued_now() == {"email.normal": 5}


def test_a_bucket_with_fewer_tokens_than_the_batch_sends_what_it_allows(
    email: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.PROVIDER_RATE_PER_SECOND = {email: 0.01}
    settings.PROVIDER_BURST = {email: 2}
    provider_bucket.cache_clear()
    deliveries = batch(5)
    scripted(monkeypatch, deliveries, {})

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["sent", "sent", "waiting", "waiting", "waiting"]
    assert statuses(deliveries)[2:] == [("queued", 0, 0)] * 3
    waiting = Delivery.objects.filter(id__in=[d.id for d in deliveries[2:]])
    assert all(d.next_attempt_at is not None for d in waiting)


def test_a_batch_starts_no_send_once_its_time_is_up(
    email: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.SEND_BATCH_SECONDS = 0
    deliveries = batch(3)
    scripted(monkeypatch, deliveries, {})

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["sent", "waiting", "waiting"]
    assert statuses(deliveries) == [("sent", 1, 1), ("queued", 0, 0), ("queued", 0, 0)]
    assert queued_now() == {"email.normal": 2}


def test_an_unexpected_error_in_one_send_costs_the_batch_nothing(
    email: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    deliveries = batch(3)
    scripted(monkeypatch, deliveries, {0: fail(KeyError("bug"))})

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["retrying", "sent", "sent"]
    failed = Delivery.objects.get(id=deliveries[0].id)
    assert failed.reason == "worker error"
    assert "KeyError" in Attempt.objects.get(delivery=failed).error


def test_a_report_that_overtakes_one_send_of_a_batch_is_kept(
    email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = batch(3)

    def delivered_before_we_commit(message: OutboundMessage) -> SendResult:
        # the provider's webhook lands while the worker still holds the batch
        Delivery.objects.filter(id=message.delivery_id).update(status=DeliveryStatus.DELIVERED)
        return SendResult(provider_message_id="early", status_code=202)

    scripted(monkeypatch, deliveries, {1: delivered_before_we_commit})

    outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["sent", "delivered", "sent"]
    overtaken = Delivery.objects.get(id=deliveries[1].id)
    assert overtaken.status == DeliveryStatus.DELIVERED
    assert overtaken.provider_message_id == "early"
    assert overtaken.sent_at is not None


def test_a_delivery_another_worker_finished_is_left_alone(
    email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = batch(3)
    Delivery.objects.filter(id=deliveries[1].id).update(status=DeliveryStatus.SENT, attempts=1)
    scripted(monkeypatch, deliveries, {})

    outcomes = attempt([*deliveries, deliveries[0]])  # and a duplicate id in the message

    assert list(outcomes.values()) == ["sent", "not_claimed", "sent"]
    assert statuses(deliveries) == [("sent", 1, 1), ("sent", 1, 0), ("sent", 1, 1)]


def test_a_push_batch_records_each_deliverys_devices(email: str) -> None:
    notification = NotificationFactory()
    deliveries = [DeliveryFactory(notification=notification, channel="push") for _ in range(3)]
    for delivery in deliveries:
        DeviceFactory(recipient=delivery.recipient)
        DeviceFactory(recipient=delivery.recipient)

    outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["sent"] * 3
    for delivery in deliveries:
        delivery.refresh_from_db()
        tokens = set(delivery.recipient.devices.values_list("token", flat=True))
        assert set(delivery.push_accepted) == tokens
        assert delivery.provider_message_id == ",".join(delivery.push_accepted.values())


@pytest.mark.parametrize(
    ("count", "sizes"),
    [
        (1000, [50] * 20),  # capped at SEND_BATCH_SIZE
        (100, [7] * 14 + [2]),  # spread over SEND_BATCH_SPREAD messages or so
        (5, [1] * 5),
        (1, [1]),
    ],
)
def test_a_publish_is_cut_into_batches_per_queue(count: int, sizes: list[int]) -> None:
    ids = [f"id-{i}" for i in range(count)]
    items = [(pk, "email", "normal") for pk in ids] + [("sms-1", "sms", "high")]

    batches = send_batches(items)

    email = [batch for queue, batch in batches if queue == "email.normal"]
    assert [len(b) for b in email] == sizes
    assert [pk for b in email for pk in b] == ids  # every id once, in order
    assert ("sms.high", ["sms-1"]) in batches


def test_a_batch_writes_its_outcomes_as_it_goes(
    email: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SEND_BATCH_RECORD_SECONDS = 0  # after every send
    deliveries = batch(3)
    seen: list[list[str]] = []

    def look_then_accept(message: OutboundMessage) -> SendResult:
        # what a reconciler would find, were this worker killed now
        seen.append([s for s, _, _ in statuses(deliveries)])
        return SendResult(provider_message_id="ok", status_code=202)

    scripted(monkeypatch, deliveries, dict.fromkeys(range(3), look_then_accept))

    assert list(attempt(deliveries).values()) == ["sent"] * 3
    assert seen == [
        ["sending", "sending", "sending"],
        ["sent", "sending", "sending"],
        ["sent", "sent", "sending"],
    ]


def test_our_own_errors_do_not_open_the_providers_breaker(
    email: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    deliveries = batch(4)  # the breaker opens after 2 transient failures of the provider
    scripted(monkeypatch, deliveries, dict.fromkeys(range(4), fail(KeyError("template bug"))))

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["retrying"] * 4  # all tried, none handed back
    assert provider_breaker(email).state() == "closed"


def test_a_breaker_that_cannot_be_told_costs_the_batch_nothing(
    email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliveries = batch(3)
    scripted(monkeypatch, deliveries, {})

    def redis_down() -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(provider_breaker(email), "record_success", redis_down)

    assert list(attempt(deliveries).values()) == ["sent"] * 3
    assert [s for s, _, _ in statuses(deliveries)] == ["sent"] * 3


def test_a_write_that_fails_after_the_last_record_does_not_record_twice(
    email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three sends that fail (the breaker opens at the second, the third is handed back)
    # and a database that fails the hand-back, after the outcomes were written
    deliveries = batch(3)
    scripted(monkeypatch, deliveries, dict.fromkeys(range(3), fail(TransientFailure("down"))))

    def hand_back(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the database went away")

    monkeypatch.setattr(sending, "deliveries_hand_back", hand_back)

    # When the batch is attempted, the task fails
    with pytest.raises(OperationalError):
        attempt(deliveries)

    # Then each attempt made is on record once
    rows = Attempt.objects.filter(delivery__in=deliveries)
    assert sorted(rows.values_list("number", flat=True)) == [1, 1]
