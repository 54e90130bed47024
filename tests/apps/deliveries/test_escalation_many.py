"""A read-all or seen-all over thousands of in-app deliveries stands down the escalation steps
of the few notifications that have them, in statements whose shape does not grow with the
number of messages (no OR per (notification, recipient) pair)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.deliveries.lifecycle import deliveries_read, deliveries_seen
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from tests.factories import DeliveryFactory, NotificationFactory, RecipientFactory
from tests.support.sqlite import sqlite_manage

pytestmark = pytest.mark.django_db

MESSAGES = 5000
STEP = {"after": "30m", "channels": ["email"]}


def _inbox(unless: str) -> tuple[list[str], list[Delivery], Delivery]:
    """MESSAGES in-app deliveries of one recipient, one notification each; two of the
    notifications have a pending escalation step waiting on `unless`, and another recipient's
    copy of one of them has its own."""
    recipient = RecipientFactory()
    first = NotificationFactory(client=recipient.client, channels=["inapp"])
    plain = Notification.objects.bulk_create(
        Notification(
            id=uuid.uuid4(),
            client=first.client,
            template=first.template,
            template_version=first.template_version,
            variables={},
            channels=["inapp"],
            priority="normal",
            category="orders",
        )
        for _ in range(MESSAGES - 3)
    )
    escalated = [
        NotificationFactory(
            client=recipient.client,
            channels=["inapp"],
            escalation=[{**STEP, "unless": unless}],
        )
        for _ in range(2)
    ]
    inapp = Delivery.objects.bulk_create(
        Delivery(
            notification=n,
            recipient=recipient,
            channel="inapp",
            priority="normal",
            status=DeliveryStatus.SENT,
        )
        for n in [first, *plain, *escalated]
    )
    steps = [
        DeliveryFactory(
            notification=n,
            recipient=recipient,
            channel="email",
            escalation_step=1,
            status=DeliveryStatus.SCHEDULED,
        )
        for n in escalated
    ]
    others = DeliveryFactory(
        notification=escalated[0],
        recipient__client=recipient.client,
        channel="email",
        escalation_step=1,
        status=DeliveryStatus.SCHEDULED,
    )
    return [str(d.id) for d in inapp], steps, others


def _widest_or(queries: list[dict[str, str]]) -> int:
    return max(q["sql"].count(" OR ") for q in queries)


def test_reading_5000_messages_stands_down_the_two_steps_in_bounded_statements() -> None:
    ids, steps, others = _inbox("read")

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        moved = deliveries_read(delivery_ids=ids)

    assert moved == MESSAGES
    for step in steps:
        step.refresh_from_db()
        assert (step.status, step.reason) == ("cancelled", "engaged")
    others.refresh_from_db()
    assert others.status == "scheduled"  # another recipient's step: that reader was not them
    assert _widest_or(queries.captured_queries) < 5
    assert len(queries.captured_queries) < 15


def test_seeing_5000_messages_stands_down_only_steps_waiting_on_seen() -> None:
    ids, _, _ = _inbox("seen")

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        stood_down = deliveries_seen(delivery_ids=ids)

    assert stood_down == 2
    assert sorted(Delivery.objects.filter(escalation_step=1).values_list("status", flat=True)) == [
        "cancelled",
        "cancelled",
        "scheduled",
    ]
    assert _widest_or(queries.captured_queries) < 5
    assert len(queries.captured_queries) < 15


def test_a_read_of_messages_without_steps_locks_and_reads_no_steps() -> None:
    ids, _, _ = _inbox("read")
    without = ids[:-2]  # the two escalated notifications' messages left out

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        deliveries_read(delivery_ids=without)

    assert not [q for q in queries.captured_queries if "escalation_step" in q["sql"]]
    assert (
        sorted(Delivery.objects.filter(escalation_step=1).values_list("status", flat=True))
        == ["scheduled"] * 3
    )


SQLITE_SCRIPT = """
import json
from django.db import transaction
from apps.deliveries.lifecycle import deliveries_read
from apps.deliveries.models import Delivery
from apps.ops.factories import DeliveryFactory, NotificationFactory, RecipientFactory
recipient = RecipientFactory()
reads, steps = [], []
for n in range(150):  # more pairs than one OR'd SQLite query takes
    steps_of = [{"after": "30m", "channels": ["email"], "unless": "read"}] if n % 2 else []
    notification = NotificationFactory(
        client=recipient.client, channels=["inapp"], escalation=steps_of
    )
    reads.append(str(DeliveryFactory(
        notification=notification, recipient=recipient, channel="inapp", status="sent"
    ).id))
    if steps_of:
        steps.append(DeliveryFactory(
            notification=notification, recipient=recipient, channel="email",
            escalation_step=1, status="scheduled",
        ).id)
with transaction.atomic():
    deliveries_read(delivery_ids=reads)
statuses = sorted(set(Delivery.objects.filter(id__in=steps).values_list("status", flat=True)))
print(json.dumps({"steps": len(steps), "statuses": statuses}))
"""


def test_a_read_all_stands_the_steps_down_on_sqlite_too(tmp_path: Path) -> None:
    # `make run`'s database: no unnest there, the pairs are read in OR'd chunks.
    manage = sqlite_manage(tmp_path)
    manage("migrate", "--noinput")
    result = json.loads(manage("shell", "-c", SQLITE_SCRIPT).strip().splitlines()[-1])

    assert result == {"steps": 75, "statuses": ["cancelled"]}
