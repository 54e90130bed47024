"""Retention purge: finished history past its age goes, in batches; the rest stays."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone

from apps.deliveries.models import (
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Notification,
)
from apps.deliveries.retention import history_purge, parse_age
from tests.factories import (
    AttemptFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
)

pytestmark = [pytest.mark.django_db]


def _aged(status: str, days: int) -> Delivery:
    delivery = DeliveryFactory(status=status)
    DeliveryEventFactory(delivery=delivery, status=status)
    AttemptFactory(delivery=delivery)
    if status == DeliveryStatus.DEAD:
        DeadLetterFactory(delivery=delivery)
    old = timezone.now() - dt.timedelta(days=days)
    Delivery.objects.filter(id=delivery.id).update(updated_at=old)
    Notification.objects.filter(id=delivery.notification_id).update(created_at=old)
    return delivery


def test_purge_deletes_old_finished_history_in_batches_and_keeps_the_rest() -> None:
    old = [_aged(s, 120) for s in ("sent", "dead", "skipped", "sent", "failed")]
    in_flight = _aged(DeliveryStatus.RETRYING, 120)
    recent = _aged(DeliveryStatus.SENT, 10)

    out = StringIO()
    call_command("purge_history", "--older-than", "90d", "--batch-size", "2", stdout=out)

    assert set(Delivery.objects.values_list("id", flat=True)) == {in_flight.id, recent.id}
    assert DeliveryEvent.objects.count() == 2
    assert Attempt.objects.count() == 2
    assert DeadLetter.objects.count() == 0
    kept = {in_flight.notification_id, recent.notification_id}
    assert set(Notification.objects.values_list("id", flat=True)) == kept
    assert "5 deliveries" in out.getvalue()
    assert "5 notifications" in out.getvalue()
    assert "1 dead_letters" in out.getvalue()
    assert len(old) == 5


def test_dry_run_counts_and_deletes_nothing() -> None:
    _aged(DeliveryStatus.SENT, 100)
    result = history_purge(older_than=dt.timedelta(days=90), dry_run=True)
    assert result.deleted["deliveries"] == 1
    assert result.deleted["notifications"] == 1
    assert Delivery.objects.count() == 1


def test_ages_parse_and_bad_ones_are_refused() -> None:
    assert parse_age("90d") == dt.timedelta(days=90)
    assert parse_age("12h") == dt.timedelta(hours=12)
    assert parse_age("2w") == dt.timedelta(weeks=2)
    with pytest.raises(ValueError, match="not an age"):
        parse_age("ninety days")
    with pytest.raises(CommandError, match="not an age"):
        call_command("purge_history", "--older-than", "90x")


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        ("purge_history", "--older-than"),
        ("replay_dead_letters", "--since"),
        ("send_test_notification", "recipient"),
        ("create_api_key", "--ops"),
    ],
)
def test_operator_commands_explain_themselves(command: str, phrase: str) -> None:
    app = {
        "purge_history": "apps.deliveries",
        "replay_dead_letters": "apps.deliveries",
        "send_test_notification": "apps.ops",
        "create_api_key": "apps.clients",
    }[command]
    help_text = load_command_class(app, command).create_parser("manage.py", command).format_help()
    assert phrase in help_text
    assert len(help_text) > 400
