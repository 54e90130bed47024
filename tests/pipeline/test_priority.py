"""Priority: a channel worker consumes its queues highest first (as the Procfile runs it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, DeliveryStatus
from notifier.queues import channel_queues
from notifier.types import Channel
from tests.factories import RecipientFactory
from tests.support.processes import ROOT, Simulator, Worker, wait_until


def post_email(api: APIClient, recipients: list[str], priority: str) -> list[str]:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipients": recipients,
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
            "priority": priority,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    notification = response.json()["id"]
    return [
        str(i)
        for i in Delivery.objects.filter(notification_id=notification)
        .order_by("recipient__external_id")
        .values_list("id", flat=True)
    ]


@pytest.mark.pipeline
def test_critical_overtakes_a_backlog_of_low_on_the_same_channel(
    worker_factory: Callable[..., Worker],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    # Given one email worker (concurrency 1, the Procfile's queue order) busy with 20 `low`
    # emails that take 0.2 s each at the provider
    sendgrid.fault(kind="latency", ms=200)
    worker_factory(queues=channel_queues(Channel.EMAIL), concurrency=1, name="email")
    client = demo["client"]
    for n in range(2, 27):
        RecipientFactory(client=client, external_id=f"user-{n}")
    lows = [post_email(api, [f"user-{n}"], "low")[0] for n in range(7, 27)]
    wait_until(lambda: len(sendgrid.accepted()) >= 2, timeout=30)

    # When five `critical` emails arrive (one notification, five recipients)
    sent_already = len(sendgrid.accepted())
    criticals = post_email(api, [f"user-{n}" for n in range(2, 7)], "critical")
    wait_until(
        lambda: (
            Delivery.objects.filter(id__in=lows + criticals, status=DeliveryStatus.SENT).count()
            == 25
        ),
        timeout=90,
    )

    # Then they went out before the backlog drained, back to back: between their arrival and
    # them only the `low` in flight and the one prefetched (prefetch 1), give or take a race.
    # (Round robin over the queues would interleave them with lows one for one.)
    order = [r["key"] for r in sendgrid.accepted()]
    positions = sorted(order.index(c) for c in criticals)
    lows_before = positions[0]
    lows_between = positions[-1] - positions[0] + 1 - len(criticals)
    lows_after = len(order) - positions[-1] - 1
    assert lows_before <= sent_already + 3, order
    assert lows_between <= 1, order
    assert lows_after >= 10, order
    print(
        f"priority: {lows_before} lows before the criticals, {lows_between} between, "
        f"{lows_after} after"
    )


def test_procfile_and_compose_workers_consume_their_channel_queues_in_priority_order() -> None:
    for path in (ROOT / "Procfile", ROOT / "docker" / "compose.yaml"):
        text = Path(path).read_text()
        for channel in Channel:
            match = re.search(rf"-n {channel.value}@%h -Q (\S+)", text)
            assert match, f"{path.name}: no {channel.value} worker"
            assert match.group(1).split(",") == channel_queues(channel), path.name
