"""`manage.py send_test_notification` goes through the real pipeline to the provider."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.deliveries.models import Delivery, DeliveryStatus
from tests.support.processes import Simulator, Worker

pytestmark = [pytest.mark.pipeline]


def test_test_notification_is_sent_by_a_real_worker(
    worker: Worker, sendgrid: Simulator, demo: dict[str, object]
) -> None:
    out = StringIO()
    call_command("send_test_notification", "user-1", "email", "--wait", "30", stdout=out)

    assert out.getvalue().rstrip().endswith(": sent")
    (delivery,) = Delivery.objects.filter(channel="email")
    assert delivery.status == DeliveryStatus.SENT
    (mail,) = sendgrid.accepted()
    assert mail["body"]["subject"] == "Test notification"
    assert mail["body"]["personalizations"] == [{"to": [{"email": "user-1@example.com"}]}]


def test_unknown_recipient_is_a_clear_error(transactional_db: None) -> None:
    with pytest.raises(CommandError, match="No recipient 'nobody'"):
        call_command("send_test_notification", "nobody", "sms")
