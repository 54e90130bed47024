"""The A/B label recorded on a delivery is the one its copy was rendered with, whatever the
attempt's outcome: a B that fails for good is dead under B, a B retried is retrying under B
(the rollup counts failed and dead by the delivery's variant), and a label the version does not
have is never recorded (in-process send, real PostgreSQL and Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.deliveries.compose import delivery_message
from apps.deliveries.models import Delivery, VariantAssignment
from apps.templates.models import Template
from notifier.errors import PermanentFailure, TransientFailure
from tests.apps.deliveries.test_batches import attempt, email, fail, scripted
from tests.factories import DeliveryFactory, NotificationFactory, TemplateFactory

pytestmark = [pytest.mark.django_db]

__all__ = ["email"]  # the fixture, imported for these tests

VARIANTS = [
    {"channel": "email", "label": "A", "weight": 0, "subject": "A {{ order_id }}", "body": "a"},
    {"channel": "email", "label": "B", "weight": 1, "subject": "B {{ order_id }}", "body": "b"},
]


def b_deliveries(count: int) -> list[Delivery]:
    """Deliveries of a test whose weights send everyone to B."""
    template = TemplateFactory(key="welcome", variants=VARIANTS)
    notification = NotificationFactory(client=template.client, template=template)
    return [DeliveryFactory(notification=notification) for _ in range(count)]


def test_a_b_that_fails_permanently_is_dead_under_b_and_one_retried_is_retrying_under_b(
    email: str,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    deliveries = b_deliveries(3)
    scripted(
        monkeypatch,
        deliveries,
        {
            0: fail(PermanentFailure("invalid address", status_code=400)),
            1: fail(TransientFailure("http 503", status_code=503)),
        },
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = attempt(deliveries)

    assert list(outcomes.values()) == ["dead", "retrying", "sent"]
    rows = Delivery.objects.in_bulk([d.id for d in deliveries])
    assert [(rows[d.id].status, rows[d.id].variant) for d in deliveries] == [
        ("dead", "B"),
        ("retrying", "B"),
        ("sent", "B"),
    ]
    assert VariantAssignment.objects.count() == 3


def test_the_label_recorded_is_the_label_of_the_copy_rendered() -> None:
    (delivery,) = b_deliveries(1)
    delivery.variant = "Z"  # no variant of the version has it: the first sibling is rendered

    message = delivery_message(delivery=delivery)

    assert message.subject == "A A-1"
    assert delivery.variant == "A"


def test_a_lone_labelled_variant_is_rendered_and_recorded_outside_a_test() -> None:
    template: Template = TemplateFactory(
        key="solo", variants=[{"channel": "email", "label": "A", "subject": "Solo", "body": "b"}]
    )
    delivery = DeliveryFactory(
        notification=NotificationFactory(client=template.client, template=template)
    )
    delivery.variant = "A"

    message = delivery_message(delivery=delivery)

    assert message.subject == "Solo"
    assert delivery.variant == ""
