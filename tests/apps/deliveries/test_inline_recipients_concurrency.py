"""Inline recipients under concurrency, on PostgreSQL: two POSTs naming the same recipients in
opposite orders, with different fields per recipient, must wait for each other, never deadlock
(a deadlock is PostgreSQL aborting one transaction: that request's 503)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from apps.deliveries.models import Notification
from apps.recipients.models import Recipient
from tests.support.concurrency import post_together

URL = "/api/v1/notifications"
ROUNDS = 4
IDS = 40
# Different fields per recipient: each distinct set of fields is its own statement.
FIELD_SETS: list[dict[str, str]] = [
    {"name": "N"},
    {"email": "x@example.com"},
    {"name": "N", "locale": "fr"},
    {},
]


def _recipients(round_no: int, *, reverse: bool) -> list[dict[str, Any]]:
    refs = [
        # Half already exist after the first round (updated), half are new each round.
        {"id": f"r{i}" if i % 2 else f"r{i}-{round_no}", **FIELD_SETS[i // 2 % len(FIELD_SETS)]}
        for i in range(IDS)
    ]
    return refs[::-1] if reverse else refs


@pytest.mark.django_db(transaction=True)
def test_opposite_orders_of_the_same_inline_recipients_do_not_deadlock(
    api_key: tuple[Any, str], demo: dict[str, Any], clean_redis: redis.Redis
) -> None:
    base = {"template": "order_shipped", "variables": {"order_id": "A-1"}, "channels": ["email"]}

    for round_no in range(ROUNDS):
        bodies = [
            {**base, "recipients": _recipients(round_no, reverse=reverse)}
            for reverse in (False, True)
        ]
        statuses = [status for status, _, _ in post_together(api_key[1], URL, bodies)]

        assert statuses == [202, 202], f"round {round_no}: {statuses}"

    assert Notification.objects.count() == 2 * ROUNDS
    client = demo["client"]
    assert Recipient.objects.filter(client=client).count() == 1 + IDS // 2 + ROUNDS * IDS // 2
    assert Recipient.objects.get(client=client, external_id="r3").email == "x@example.com"
    assert Recipient.objects.get(client=client, external_id="r5").locale == "fr"
