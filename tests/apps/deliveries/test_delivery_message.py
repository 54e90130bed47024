"""Rendering a delivery: a template's own failure is permanent, a dependency's is not."""

from __future__ import annotations

import pytest
import redis
from django.db import OperationalError

from apps.deliveries import compose
from apps.deliveries.compose import delivery_message
from notifier.errors import PermanentFailure
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fault", [OperationalError("server closed the connection"), redis.ConnectionError("down")]
)
def test_a_dependency_failing_under_the_render_is_not_a_permanent_failure(
    monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    # Building the recipient's context is the part of a render that may one day read the
    # database: its outage must reach the task's own retry, not dead-letter the delivery.
    delivery = DeliveryFactory(channel="email")

    def failing(**_: object) -> None:
        raise fault

    monkeypatch.setattr(compose, "recipient_context", failing)

    with pytest.raises(type(fault)):
        delivery_message(delivery=delivery)


def test_a_template_error_is_a_permanent_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    delivery = DeliveryFactory(channel="email")

    def failing(**_: object) -> None:
        raise ValueError("bad data")

    monkeypatch.setattr(compose, "recipient_context", failing)

    with pytest.raises(PermanentFailure, match="template does not render"):
        delivery_message(delivery=delivery)
