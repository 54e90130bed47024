"""Edges of the lifecycle: a hold that finds its row already moved, an old-format task message."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.metrics import DELIVERIES_FINISHED
from apps.deliveries import tasks
from apps.deliveries.lifecycle.moves import delivery_hold
from apps.deliveries.models import DeliveryStatus
from apps.deliveries.sending import AttemptOutcome
from notifier.routing import Action, Decision, Reason
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def test_a_hold_whose_row_was_moved_first_counts_nothing_and_starts_no_fallback() -> None:
    # The re-check said skip, but the reconciler re-queued the row first (it looked stuck).
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.QUEUED, attempts=1)
    notification = delivery.notification
    notification.fallback = ["email"]
    notification.save(update_fields=["fallback"])
    decision = Decision(Action.SKIP, Reason.OPTED_OUT, Reason.OPTED_OUT.message(channel="sms"))
    skipped = DELIVERIES_FINISHED.labels(channel="sms", provider="", status="skipped")
    before = skipped._value.get()

    status = delivery_hold(delivery, decision)

    assert status == DeliveryStatus.QUEUED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.reason) == ("queued", 1, "")
    assert delivery.events.count() == 0
    assert notification.deliveries.count() == 1  # no fallback delivery
    assert skipped._value.get() == before  # not counted as skipped


def test_a_task_message_carrying_one_id_as_a_string_is_not_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    def attempt(*, delivery_ids: list[str]) -> dict[str, AttemptOutcome]:
        seen.append(delivery_ids)
        return {pk: AttemptOutcome("sent") for pk in delivery_ids}

    monkeypatch.setattr(tasks, "deliveries_attempt", attempt)
    pk = "0b7f5c8e-6a49-4a37-9a83-8d2b8e1f4c11"

    assert tasks.send_deliveries.run(pk) == {"sent": 1}
    assert seen == [[pk]]
