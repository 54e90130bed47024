"""A/B tests through the real pipeline: API -> PostgreSQL -> Redis -> Celery worker -> SendGrid
simulator. Each recipient gets the same label's copy on every send, the delivery records it,
and after promoting a winner the next send uses the promoted copy for everyone."""

from __future__ import annotations

from collections import defaultdict

import pytest
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.deliveries.models import Delivery, DeliveryStatus, VariantAssignment
from apps.templates.models import Template
from apps.templates.services import template_variant_promote
from tests.factories import RecipientFactory
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

PEOPLE = [f"shopper-{i}" for i in range(6)]
VARIANTS = [
    {"channel": "email", "label": "A", "weight": 1, "subject": "A: order {{ order_id }}",
     "body": "Plain copy"},
    {"channel": "email", "label": "B", "weight": 1, "subject": "B: order {{ order_id }} is here",
     "body": "Bold copy"},
]  # fmt: skip


def send_all(api: APIClient, order_id: str) -> list[str]:
    response = api.post(
        "/api/v1/notifications",
        {"recipients": PEOPLE, "template": "welcome", "variables": {"order_id": order_id}},
        format="json",
    )
    assert response.status_code == 202, response.content
    # Several recipients: the deliveries may be left out of the answer, so read them.
    notification = response.json()["id"]
    ids = [
        str(pk)
        for pk in Delivery.objects.filter(notification_id=notification).values_list("id", flat=True)
    ]
    assert len(ids) == len(PEOPLE)
    return ids


def all_sent(ids: list[str]) -> list[Delivery]:
    rows = list(Delivery.objects.filter(id__in=ids, status=DeliveryStatus.SENT))
    return rows if len(rows) == len(ids) else []


def subjects_by_recipient(sendgrid: Simulator) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for request in sendgrid.requests():
        body = request["body"]
        found[body["personalizations"][0]["to"][0]["email"]].append(body["subject"])
    return found


def test_each_recipient_keeps_its_label_over_repeated_sends_then_promotion_sends_the_winner(
    worker: Worker, sendgrid: Simulator, api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    client = api_key[0].client
    for external_id in PEOPLE:
        RecipientFactory(client=client, external_id=external_id, email=f"{external_id}@x.test")
    created = api.put("/api/v1/templates/welcome", {"variants": VARIANTS}, format="json")
    assert created.status_code == 201, created.content

    sent: list[Delivery] = []
    for round_ in range(3):
        ids = send_all(api, f"R{round_}")
        sent += wait_until(lambda ids=ids: all_sent(ids), timeout=60)

    labels = {
        r.recipient.external_id: r.label
        for r in VariantAssignment.objects.select_related("recipient")
    }
    assert sorted(labels) == PEOPLE
    assert set(labels.values()) == {"A", "B"}  # six ids at 50/50: both arms
    by_recipient = {
        external_id: [s.split(":")[0] for s in subjects]
        for external_id, subjects in subjects_by_recipient(sendgrid).items()
    }
    assert by_recipient == {f"{p}@x.test": [labels[p]] * 3 for p in PEOPLE}
    recorded: dict[str, set[str]] = defaultdict(set)
    for delivery in Delivery.objects.filter(id__in=[d.id for d in sent]).select_related(
        "recipient"
    ):
        recorded[delivery.recipient.external_id].add(delivery.variant)
    assert recorded == {p: {labels[p]} for p in PEOPLE}
    detail = api.get(f"/api/v1/notifications/{sent[0].notification_id}").json()
    assert {d["recipient"]: d["variant"] for d in detail["deliveries"]} == labels

    template = Template.objects.get(client=client, key="welcome")
    template_variant_promote(template=template, channel="email", locale="en", label="B", actor="t")
    sendgrid.reset()
    ids = send_all(api, "P1")
    after = wait_until(lambda: all_sent(ids), timeout=60)

    assert subjects_by_recipient(sendgrid) == {
        f"{p}@x.test": ["B: order P1 is here"] for p in PEOPLE
    }
    assert {d.variant for d in after} == {""}  # no test any more
