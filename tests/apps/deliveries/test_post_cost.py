"""What a POST /api/v1/notifications costs the database and the broker: a warm request is
one SELECT (recipients with their preferences and suppressions) and one INSERT statement
(notification, deliveries, events) in its transaction, whatever the number of recipients; its send
messages go out through one producer. And the suppressions read inside the recipients query
answer what `suppressions_among` answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.connection
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kombu import Producer
from rest_framework.test import APIClient

from apps.core import broker
from apps.deliveries.checks import broker_layout_check, kombu_layout_problems
from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus, Notification
from apps.deliveries.queueing import (
    LEDGER_KEY,
    _messages,
    send_message_delivery_ids,
)
from apps.recipients.selectors import recipients_for_sending, suppressions_among
from apps.recipients.services import suppression_create, suppressions_hash
from config.celery import app
from notifier.queues import ALL_QUEUES, queue_name
from tests.factories import DeviceFactory, RecipientFactory
from tests.support.queues import queued_delivery_ids

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {"template": "order_shipped", "variables": {"order_id": "A-1"}}


def _statements(api: APIClient, body: dict[str, Any]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    # Transaction control aside (BEGIN / COMMIT when served; a savepoint inside a test's
    # transaction): the statements that do the work.
    words = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]
    return [w for w in words if w not in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}]


def _warm(api: APIClient) -> None:  # the key, the template cache
    assert api.post(URL, {**BODY, "recipient": "user-1"}, format="json").status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [
        {"recipient": "user-1", "channels": ["email"]},
        {"recipient": "user-1", "channels": ["email", "sms", "inapp"]},
        {"recipients": [f"r-{i}" for i in range(50)], "channels": ["email", "sms"]},
        {"recipient": "user-1", "channels": ["email"], "fallback": ["sms"]},
    ],
    ids=["one email", "three channels", "50 recipients", "with a fallback"],
)
def test_a_warm_post_is_one_select_and_one_insert_statement(
    api: APIClient, demo: dict[str, Any], extra: dict[str, Any]
) -> None:
    for i in range(50):
        RecipientFactory(client=demo["client"], external_id=f"r-{i}")
    demo["recipient"].email = ""  # the fallback case: email unreachable, sms taken
    demo["recipient"].save()
    _warm(api)

    statements = _statements(api, {**BODY, **extra})

    assert statements == ["SELECT", "WITH"]
    notification = Notification.objects.latest("created_at")
    deliveries = list(notification.deliveries.all())
    assert len(deliveries) == notification.recipient_count * len(extra["channels"]) + len(
        extra.get("fallback", [])
    )
    events = DeliveryEvent.objects.filter(delivery__notification=notification)
    assert sorted(e.delivery_id for e in events) == sorted(d.id for d in deliveries)


@pytest.mark.django_db
def test_posts_in_a_row_run_both_statements_prepared(api: APIClient, demo: dict[str, Any]) -> None:
    """From the sixth on its connection, each statement runs prepared (apps/core/bound.py): the
    recipients SELECT with its values apart, the INSERT with its rows as one JSON parameter;
    every request's rows are still its own."""
    for i in range(3):
        RecipientFactory(client=demo["client"], external_id=f"r-{i}")
    ids: list[str] = []
    for i in range(8):
        body = {**BODY, "recipients": ["user-1", f"r-{i % 3}"], "channels": ["email", "sms"]}
        body["variables"] = {"order_id": f"A-{i}"}
        response = api.post(URL, body, format="json")
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("json_populate_recordset" in p and p.startswith("WITH") for p in prepared)
    assert any(p.startswith('SELECT "recipients_recipient"."id"') for p in prepared)
    for i, notification_id in enumerate(ids):
        notification = Notification.objects.get(pk=notification_id)
        assert notification.variables == {"order_id": f"A-{i}"}
        deliveries = sorted(
            (d.recipient.external_id, d.channel, d.status) for d in notification.deliveries.all()
        )
        assert deliveries == sorted(
            (r, c, "queued") for r in ("user-1", f"r-{i % 3}") for c in ("email", "sms")
        )
        assert DeliveryEvent.objects.filter(delivery__notification=notification).count() == 4


@pytest.mark.django_db
def test_push_reads_the_devices_in_one_more_select(api: APIClient, demo: dict[str, Any]) -> None:
    DeviceFactory(recipient=demo["recipient"])
    _warm(api)

    statements = _statements(api, {**BODY, "recipient": "user-1", "channels": ["push"]})

    assert statements == ["SELECT", "SELECT", "WITH"]


@pytest.mark.django_db
def test_inline_recipients_add_one_upsert_statement(api: APIClient, demo: dict[str, Any]) -> None:
    _warm(api)
    inline = [{"id": f"new-{i}", "email": f"n{i}@example.com"} for i in range(20)]

    statements = _statements(api, {**BODY, "recipients": inline, "channels": ["email"]})

    assert statements == ["INSERT", "SELECT", "WITH"]


@pytest.mark.django_db
def test_the_first_events_say_what_each_delivery_is(api: APIClient, demo: dict[str, Any]) -> None:
    demo["recipient"].email = ""
    demo["recipient"].save()

    response = api.post(
        URL, {**BODY, "recipient": "user-1", "channels": ["email"], "fallback": ["sms"]}, "json"
    )

    assert response.status_code == 202
    timeline = {
        d.channel: (d.status, [(e.status, e.detail) for e in d.events.all()])
        for d in Delivery.objects.filter(notification_id=response.json()["id"])
    }
    assert timeline == {
        "email": ("skipped", [("skipped", "no email contact data")]),
        "sms": ("queued", [("queued", "fallback: every requested channel failed; accepted")]),
    }


def _count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request written to a Redis connection (a pipeline is one), by its first command."""
    sent: list[str] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        first = command[0] if isinstance(command, list) and command else command
        sent.append(bytes(first).split(b"\r\n")[2].decode())
        return real(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.mark.django_db
def test_the_send_messages_and_their_ledger_entries_are_one_broker_round_trip(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    for i in range(30):
        RecipientFactory(client=demo["client"], external_id=f"r-{i}", phone="+14155552671")

    def no_send_task(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("send_task is not the publish path")

    def no_producer(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no kombu producer on the publish path")

    monkeypatch.setattr(app, "send_task", no_send_task)
    monkeypatch.setattr(Producer, "publish", no_producer)
    with django_capture_on_commit_callbacks(execute=True):  # connections opened, caches warm
        _warm(api)
    clean_redis.delete(LEDGER_KEY, *(k for q in ALL_QUEUES for k in broker.queue_keys(q)))
    body = {**BODY, "recipients": [f"r-{i}" for i in range(30)], "channels": ["email", "sms"]}
    sent = _count_round_trips(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, body, format="json")

    assert response.status_code == 202
    # The per-key throttle (which reads the template cache's token in the same call), then the
    # publish: ledger entries and messages in one transaction.
    assert sent == ["EVALSHA", "MULTI"], sent
    queued = queued_delivery_ids(clean_redis)
    ids = sorted(
        str(d.id)
        for d in Delivery.objects.filter(
            notification_id=response.json()["id"], status=DeliveryStatus.QUEUED
        )
    )
    assert len(ids) == 60
    assert sorted(i for batch in queued.values() for i in batch) == ids
    assert len(list(broker.queued_messages(client=clean_redis))) > 2  # several, one round trip
    assert sorted(m.decode() for m in clean_redis.zrange(LEDGER_KEY, 0, -1)) == ids


def _snapshot(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of the database with its serialized value."""
    return {key: client.dump(key) for key in client.keys("*")}


@pytest.mark.parametrize("priority", [0, 5, 9])
@pytest.mark.parametrize("countdown", [None, 30.0])
def test_a_send_message_is_what_a_kombu_producer_stores(
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    countdown: float | None,
    priority: int,
) -> None:
    """The envelope written without a producer is the one kombu's Redis transport writes for
    the same Celery task message (only the generated ids differ), in the same list, at every
    priority step; and kombu wrote nothing else (no binding, no other key) that ours lacks."""
    # Into Celery's `changes` itself: undoing a `setitem` on `app.conf` would write the old value
    # there and pin it over Django's setting for every later test.
    monkeypatch.setitem(app.conf.changes, "task_default_priority", priority)
    queue, ids = queue_name("sms", "high"), ["d-1", "d-2"]
    [(ours_key, ours_payload)] = _messages([(queue, ids)], countdown=countdown)
    amqp, conf = app.amqp, app.conf
    headers, properties, body, _ = amqp.create_task_message(
        "task-id", "deliveries.send", [ids], {}, countdown=countdown
    )
    clean_redis.set("unrelated", "kept")
    before = _snapshot(clean_redis)
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            serializer=conf.task_serializer,
            delivery_mode=conf.task_default_delivery_mode,
            priority=conf.task_default_priority,
            headers=headers,
            **properties,
        )
    after = _snapshot(clean_redis)
    [kombu_key] = [key for key in after if key not in before]
    assert {k: v for k, v in after.items() if k != kombu_key} == before
    assert clean_redis.llen(kombu_key) == 1
    theirs = json.loads(clean_redis.lpop(kombu_key))
    ours = json.loads(ours_payload)

    assert ours_key == kombu_key.decode()
    assert ours_key == broker.priority_key(queue, priority)
    for message in (ours, theirs):
        message["properties"]["delivery_tag"] = "tag"
        for name in ("id", "root_id"):
            message["headers"][name] = "id"
        message["properties"]["correlation_id"] = "id"
        message["headers"].pop("argsrepr")  # Celery's saferepr; ours is repr: same text here
        eta = message["headers"].pop("eta")
        assert (eta is None) == (countdown is None)
    assert ours == theirs
    assert send_message_delivery_ids(ours) == ["d-1", "d-2"]


def test_kombus_redis_layout_is_the_broker_adapters(settings: Any) -> None:
    """The system check (deliveries.E002) passes under the production transport options and
    names a difference the options would make."""
    assert kombu_layout_problems(dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)) == []
    assert broker_layout_check() == []
    changed = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "sep": ":", "global_keyprefix": "n:"}
    assert [p.split(":")[0] for p in kombu_layout_problems(changed)] == ["sep", "global_keyprefix"]
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**changed, "priority_steps": [0, 5]}
    assert [m.id for m in broker_layout_check()] == ["deliveries.E002"] * 3


def test_tls_given_to_kombu_alone_is_refused(settings: Any) -> None:
    settings.CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": "required"}
    settings.CELERY_BROKER_URL = "redis://broker:6379/0"
    assert [m.id for m in broker_layout_check()] == ["deliveries.E003"]
    settings.CELERY_BROKER_URL = "rediss://broker:6379/0?ssl_cert_reqs=required"
    assert broker_layout_check() == []


# --- suppressions read with the recipients ---------------------------------------------------


def _suppressed(client: Any, ids: list[str], channels: list[str]) -> set[tuple[str, str]]:
    recipients, pairs = recipients_for_sending(client=client, external_ids=ids, channels=channels)
    by_pk = {r.pk: r.external_id for r in recipients}
    return {(by_pk[pk], channel) for pk, channel in pairs}


@pytest.mark.django_db
def test_suppressions_in_the_recipients_query_match_the_separate_read(
    demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    client = demo["client"]
    upper = RecipientFactory(client=client, external_id="upper", email="Ada@Example.COM")
    spaced = RecipientFactory(client=client, external_id="spaced", email=" x@example.com\t")
    accented = RecipientFactory(client=client, external_id="accented", email="e@ÉXAMPLE.com")
    phone = RecipientFactory(client=client, external_id="phone", phone="+14155552671")
    clean = RecipientFactory(client=client, external_id="clean", email="ok@example.com")
    gone = RecipientFactory(client=client, external_id="gone", email="gone@example.com")
    for address in ("ada@example.com", "x@example.com", "e@éxample.com", "gone@example.com"):
        assert suppression_create(client=client, channel="email", address=address, reason="t")
    assert suppression_create(client=client, channel="sms", address="+14155552671", reason="t")
    suppressions_hash(recipient=gone)  # kept as its hash, as after an erasure
    returning = RecipientFactory(client=client, external_id="returning", email="Gone@example.com")
    people = [upper, spaced, accented, phone, clean, returning]
    channels = ["email", "sms", "inapp"]

    found = _suppressed(client, [p.external_id for p in people], channels)

    listed = suppressions_among(client_id=client.pk, recipients=people, channels=channels)
    assert found == {
        ("upper", "email"),
        ("spaced", "email"),
        ("accented", "email"),
        ("phone", "sms"),
        ("returning", "email"),
    }
    assert len(listed) == 5  # the separate read agrees, address by address


@pytest.mark.django_db
def test_the_recipients_query_lowers_ascii_the_same_under_any_collation(
    demo: dict[str, Any],
) -> None:
    """Under a Turkish collation lower('I') is U+0131: the SQL lowering must not be."""
    client = demo["client"]
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
        cursor.execute(
            "ALTER TABLE recipients_recipient ALTER COLUMN email TYPE varchar(254) "
            'COLLATE "tr-TR-x-icu"'
        )
    RecipientFactory(client=client, external_id="tim", email="TIM@EXAMPLE.COM")
    assert suppression_create(client=client, channel="email", address="tim@example.com", reason="t")

    found = _suppressed(client, ["tim"], ["email"])

    assert found == {("tim", "email")}
