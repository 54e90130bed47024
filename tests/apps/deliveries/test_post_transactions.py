"""Which POST /api/v1/notifications runs in a transaction. One whose only write is its one
INSERT (notification, deliveries, events) sends no BEGIN / COMMIT: the recipients' read, the
INSERT, then the publish. Everything that writes more, locks or takes a throttle slot still
runs in one; a delivery skipped at creation is written in one transaction with what its
announcement writes (an outbound webhook's row); and an INSERT that fails leaves nothing.

These tests commit (`transaction=True`): inside a test's own transaction every block is a
savepoint and no BEGIN would be seen."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.deliveries import services
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.recipients.models import Recipient
from apps.webhooks.models import WebhookMessage
from apps.webhooks.services import endpoint_create
from tests.factories import RecipientFactory, SubscriptionFactory, TemplateFactory, TopicFactory
from tests.support.queues import queued_delivery_ids
from tests.support.sessions import other_session

URL = "/api/v1/notifications"
BODY: dict[str, Any] = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email", "sms"],
}


def _words(api: APIClient, body: dict[str, Any]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    return [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]


def _warm(api: APIClient) -> None:
    """The key and the template cache (after a flushed Redis, the first request only starts the
    cache's token): no statement of theirs in the request measured next."""
    for _ in range(2):
        assert api.post(URL, BODY, format="json").status_code == 202


def _in_one_transaction(words: list[str]) -> bool:
    """One BEGIN ... COMMIT, and every write inside it (reads may come before: the request's
    checks, an idempotency key's first look-up)."""
    if words.count("BEGIN") != 1 or words.count("COMMIT") != 1 or words[-1] != "COMMIT":
        return False
    before = words[: words.index("BEGIN")]
    inside = words[words.index("BEGIN") + 1 : -1]
    writes = {"WITH", "INSERT", "UPDATE", "DELETE"}
    return not writes & set(before) and bool(writes & set(inside))


def _queued(client: redis.Redis) -> Counter[str]:
    """How many times each delivery id is queued (a set would hide one queued twice)."""
    return Counter(i for batch in queued_delivery_ids(client).values() for i in batch)


@pytest.mark.django_db(transaction=True)
def test_a_post_whose_one_write_is_its_insert_has_no_begin_or_commit(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    _warm(api)
    queued = _queued(clean_redis)

    words = _words(api, {**BODY, "fallback": ["inapp"], "escalation": []})

    assert words == ["SELECT", "WITH"]
    notification = Notification.objects.latest("created_at")
    ids = Counter(str(d.id) for d in notification.deliveries.all())
    assert len(ids) == 2
    assert _queued(clean_redis) - queued == ids


@pytest.fixture
def extras(demo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Requests that write more than the INSERT (or take a slot): each keeps its transaction."""
    client = demo["client"]
    TemplateFactory(client=client, key="digested", digest={"window": "1m"})
    topic = TopicFactory(client=client, key="watchers")
    SubscriptionFactory(topic=topic, recipient=demo["recipient"])
    return {
        "idempotency key": {"idempotency_key": "k-1"},
        "inline recipient": {"recipient": {"id": "new-1", "email": "new@example.com"}},
        "throttle": {"throttle": {"limit": 1, "window": "10m"}},
        "digest": {"template": "digested", "channels": ["email"]},
        "best time": {"send_at": "best_time"},
        "topic": {"recipient": None, "topic": "watchers"},
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "case",
    ["idempotency key", "inline recipient", "throttle", "digest", "best time", "topic"],
)
def test_what_writes_more_keeps_its_transaction(
    api: APIClient, extras: dict[str, dict[str, Any]], case: str, clean_redis: redis.Redis
) -> None:
    _warm(api)
    body = {**BODY, **extras[case]}
    body = {k: v for k, v in body.items() if v is not None}

    words = _words(api, body)

    assert _in_one_transaction(words), words


@pytest.mark.django_db(transaction=True)
def test_a_delivery_skipped_at_creation_commits_with_its_webhook(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    hook = endpoint_create(
        client=demo["client"],
        url="https://hooks.example.com/x",
        events_=["delivery.skipped"],
        description="",
        include_content=False,
    )
    RecipientFactory(client=demo["client"], external_id="no-phone", phone="")
    _warm(api)

    words = _words(api, {**BODY, "recipient": "no-phone"})

    assert _in_one_transaction(words), words
    assert words.index("BEGIN") < words.index("WITH") < words.index("INSERT")  # then its webhook
    (message,) = WebhookMessage.objects.filter(endpoint=hook)
    assert message.type == "delivery.skipped"
    skipped = Delivery.objects.get(pk=message.payload["data"]["delivery_id"])
    assert (skipped.channel, skipped.status) == ("sms", DeliveryStatus.SKIPPED)


@pytest.mark.django_db(transaction=True)
def test_an_insert_that_fails_without_a_transaction_leaves_nothing(
    api: APIClient,
    demo: dict[str, Any],
    clean_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The recipient is deleted between the read and the INSERT: its foreign key fails the one
    statement at its end, so neither the notification nor any delivery is left, and nothing
    was published."""
    _warm(api)
    queued = _queued(clean_redis)
    before = Notification.objects.count()
    real = services.recipients_check

    def then_deleted(*args: Any, **kwargs: Any) -> Any:
        checked = real(*args, **kwargs)
        Recipient.objects.filter(pk=demo["recipient"].pk).delete()
        return checked

    monkeypatch.setattr(services, "recipients_check", then_deleted)

    with pytest.raises(IntegrityError):
        api.post(URL, BODY, format="json")

    assert Notification.objects.count() == before
    assert not Delivery.objects.filter(recipient_id=demo["recipient"].pk).exists()
    assert _queued(clean_redis) == queued


def _prepared_here() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT split_part(statement, ' ', 1) FROM pg_prepared_statements")
        return sorted(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_migration_that_retypes_what_the_prepared_statements_touch_is_survived(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    """Another process changes the type of a column the prepared recipients' read returns (and
    of one the prepared INSERT writes): the next POST on the same connection, without a
    transaction, is served (no "cached plan must not change result type" until recycled)."""
    for _ in range(7):
        assert api.post(URL, BODY, format="json").status_code == 202
    assert _prepared_here() == ["SELECT", "WITH"]
    recipients, deliveries = Recipient._meta.db_table, Delivery._meta.db_table
    other = other_session()
    try:
        other.execute(f'ALTER TABLE "{recipients}" ALTER COLUMN "locale" TYPE text')
        other.execute(f'ALTER TABLE "{deliveries}" ALTER COLUMN "channel" TYPE text')

        words = _words(api, BODY)
        for _ in range(6):  # and prepared again
            assert api.post(URL, BODY, format="json").status_code == 202
        prepared = _prepared_here()
    finally:
        other.execute(f'ALTER TABLE "{recipients}" ALTER COLUMN "locale" TYPE varchar(20)')
        other.execute(f'ALTER TABLE "{deliveries}" ALTER COLUMN "channel" TYPE varchar(10)')
        other.close()

    assert words == ["SELECT", "DEALLOCATE", "SELECT", "WITH"]  # the read once more, no BEGIN
    assert prepared == ["SELECT", "WITH"]
    assert Notification.objects.count() == 14


@pytest.mark.django_db(transaction=True)
def test_a_transactional_post_after_a_retyping_migration_is_run_again_and_served(
    api: APIClient, demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    """With an Idempotency-Key the POST runs in a transaction: the stale prepared recipients'
    read aborts it, so its whole block runs once more after the ROLLBACK (which deallocates the
    statements) and the request is served: one notification, published once."""
    for i in range(7):
        headers = {"Idempotency-Key": f"warm-{i}"}
        assert api.post(URL, BODY, format="json", headers=headers).status_code == 202
    assert _prepared_here() == ["SELECT", "WITH"]
    queued = _queued(clean_redis)
    recipients = Recipient._meta.db_table
    other = other_session()
    try:
        other.execute(f'ALTER TABLE "{recipients}" ALTER COLUMN "locale" TYPE text')

        with CaptureQueriesContext(connection) as queries:
            response = api.post(URL, BODY, format="json", headers={"Idempotency-Key": "after"})
    finally:
        other.execute(f'ALTER TABLE "{recipients}" ALTER COLUMN "locale" TYPE varchar(20)')
        other.close()

    assert response.status_code == 202, response.content
    assert "Idempotent-Replayed" not in response
    words = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries]
    # The key's look-up, the transaction up to the stale read, then all of it once more.
    reads = ["SELECT", "SELECT", "SELECT"]  # the key's lock and look-up, the recipients' read
    assert words == [
        *["SELECT", "BEGIN", *reads, "ROLLBACK", "DEALLOCATE"],
        *["BEGIN", *reads, "WITH", "COMMIT"],
    ]
    (notification,) = Notification.objects.filter(idempotency_key="after")
    assert response.json()["id"] == str(notification.id)
    ids = Counter(str(d.id) for d in notification.deliveries.all())
    assert len(ids) == 2
    assert _queued(clean_redis) - queued == ids
    assert Notification.objects.count() == 8
