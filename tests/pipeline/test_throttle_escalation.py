"""Throttles and escalation with a real worker, a real beat and the provider simulators.

- 20 parallel triggers of a throttle with limit 1: one email reaches SendGrid, 19 `throttled`.
- Escalation from in-app to email: not read -> the email after its 2 s delay (beat releases
  it; the release event's time proves it, not how long the test waited). Read before the
  delay -> no email, and an `opened` SendGrid webhook for the email stands the SMS step down:
  those two use a 1 h delay and run the release job directly with a `now` past it (a short
  delay would race the read or the webhook on a loaded machine).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.deliveries.maintenance import deliveries_release_due
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.inbox.models import InboxMessage
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint
from apps.templates.models import Template
from tests.pipeline.helpers import notify, wait_status
from tests.support.concurrency import post_together
from tests.support.processes import Beat, Simulator, Worker, wait_until
from tests.support.webhooks import SendGridSigner, sendgrid_event

pytestmark = [pytest.mark.pipeline]

URL = "/api/v1/notifications"
DELAY = 2.0  # only for "not read": beat must release it for real
LONG = 3600.0  # steps the test stands down first; released by hand with a later `now`


@pytest.fixture
def beat(worker: Worker, tmp_path: Any) -> Iterator[Beat]:
    """Celery beat with the project's schedule, releasing due deliveries every second."""
    proc = Beat(schedule=str(tmp_path / "beat-schedule"), env={"RELEASE_EVERY_SECONDS": "1"})
    yield proc
    proc.stop()


@pytest.fixture
def signer(settings: Any) -> SendGridSigner:
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    return signer


def escalate(api: APIClient, first: str, then: list[tuple[float, str]]) -> dict[str, str]:
    """Notify on `first` now, with escalation steps; the delivery ids by channel."""
    body = notify(
        api,
        channels=[first],
        escalation=[{"after": f"{int(after)}s", "channels": [channel]} for after, channel in then],
    )
    return {d["channel"]: d["id"] for d in body["deliveries"]}


def test_20_parallel_triggers_with_limit_1_send_one_and_throttle_19(
    worker: Worker, sendgrid: Simulator, api_key: tuple[Any, str], demo: dict[str, object]
) -> None:
    # Given a template allowing one notification per order and recipient in 10 minutes
    template = demo["template"]
    assert isinstance(template, Template)
    template.throttle = {"limit": 1, "window": "10m", "key": "{{ order_id }}"}
    template.save()
    body = {
        "recipient": "user-1",
        "template": template.key,
        "variables": {"order_id": "A-1"},
        "channels": ["email"],
    }

    # When twenty clients trigger it at once
    codes = [code for code, _, _ in post_together(api_key[1], URL, [body] * 20)]

    # Then one email reaches SendGrid and nineteen deliveries are skipped, throttled
    assert codes == [202] * 20
    wait_until(lambda: Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 1)
    time.sleep(1.5)  # anything else would have been sent by now
    assert len(sendgrid.accepted()) == 1
    skipped = Delivery.objects.filter(status=DeliveryStatus.SKIPPED, reason="throttled")
    assert skipped.count() == 19
    assert Delivery.objects.count() == 20


def after_the_delay() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=LONG + 60)


def test_inapp_read_before_the_delay_means_no_email(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    # Given an in-app message escalated to email after 1 h, delivered to the inbox
    ids = escalate(api, "inapp", [(LONG, "email")])
    wait_status(ids["inapp"], "sent")
    recipient = demo["recipient"]
    assert isinstance(recipient, Recipient)
    message = InboxMessage.objects.get(delivery_id=ids["inapp"])

    # When the recipient reads it before the delay (through the inbox API)
    reader = APIClient()
    reader.credentials(
        HTTP_AUTHORIZATION=f"Recipient {recipient_token_mint(recipient=recipient).token}"
    )
    assert reader.post(f"/api/v1/inbox/{message.id}/read").status_code == 200

    # Then the email step is cancelled (engaged), and the release job run past its delay
    # releases nothing: nothing is emailed
    email = Delivery.objects.get(id=ids["email"])
    assert (email.status, email.reason) == ("cancelled", "engaged")
    assert deliveries_release_due(now=after_the_delay()) == 0
    assert Delivery.objects.get(id=ids["email"]).status == "cancelled"
    assert sendgrid.requests() == []


def test_inapp_not_read_escalates_to_email_after_the_delay(
    beat: Beat, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    # Given an in-app message escalated to email after 2 s, not read
    started = timezone.now()
    ids = escalate(api, "inapp", [(DELAY, "email")])
    wait_status(ids["inapp"], "sent")

    # When the delay passes, beat's release job queues the step and the worker sends it
    email = wait_status(ids["email"], "sent", timeout=30)

    # Then the email was held `scheduled` until beat released it once due (the event times,
    # not the test's own clock, which a loaded machine can make late), and sent once
    assert [r["key"] for r in sendgrid.accepted()] == [ids["email"]]
    events = list(email.events.order_by("at", "id"))
    timeline = [(e.status, e.detail) for e in events]
    assert timeline[0] == ("scheduled", "escalation step 1: after 2s unless read; accepted")
    assert timeline[1] == ("queued", "released: escalation step 1 due, not engaged")
    assert events[1].at >= started + dt.timedelta(seconds=DELAY)


def test_an_opened_webhook_stands_the_sms_step_down(
    worker: Worker,
    sendgrid: Simulator,
    twilio: Simulator,
    api: APIClient,
    demo: dict[str, object],
    signer: SendGridSigner,
) -> None:
    # Given an email now, escalated to SMS after 1 h unless read
    ids = escalate(api, "email", [(LONG, "sms")])
    wait_status(ids["email"], "sent")
    address = demo["recipient"].email  # type: ignore[attr-defined]

    # When SendGrid reports the email opened
    response = signer.post(Client(), [sendgrid_event("open", ids["email"], address)])

    # Then the SMS step is cancelled (engaged) and the release job past its delay sends no SMS
    assert response.status_code == 200
    assert response.json()["applied"] == 1
    sms = Delivery.objects.get(id=ids["sms"])
    assert (sms.status, sms.reason) == ("cancelled", "engaged")
    assert sms.events.last().detail == "engaged: opened"  # type: ignore[union-attr]
    assert deliveries_release_due(now=after_the_delay()) == 0
    assert Delivery.objects.get(id=ids["sms"]).status == "cancelled"
    assert twilio.requests() == []
