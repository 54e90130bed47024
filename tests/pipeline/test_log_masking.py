"""No personal data in the logs: a full email + SMS send through the real web process
(uvicorn) and a real worker, then both processes' actual output is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from apps.deliveries.models import Delivery, DeliveryStatus
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import Simulator, Worker, wait_until

pytestmark = [pytest.mark.pipeline]

EMAIL = "grace.hopper@example.org"
PHONE = "+15550001234"
OTHER_PHONE = "+15559876543"
# Every way the raw values could leak: as typed, URL-encoded, without the country code.
RAW = [EMAIL, "grace.hopper%40example.org", "hopper@", "5550001234", "5559876543"]


@pytest.fixture
def web(transactional_db: None) -> Iterator[AsgiServer]:
    server = AsgiServer(name="masking")
    yield server
    server.stop()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_full_email_and_sms_send_logs_no_raw_address_or_number(
    web: AsgiServer,
    worker: Worker,
    sendgrid: Simulator,
    twilio: Simulator,
    api_key: tuple[object, str],
    demo: dict[str, object],
) -> None:
    # Services often use the email address as the recipient's external id.
    RecipientFactory(client=demo["client"], external_id=EMAIL, email=EMAIL, phone=PHONE)
    auth = {"Authorization": f"Bearer {api_key[1]}"}
    accepted = requests.post(
        f"{web.url}/api/v1/notifications",
        json={
            "recipient": EMAIL,
            "template": "order_shipped",
            "variables": {"order_id": "A-9"},
            "channels": ["email", "sms"],
        },
        headers=auth,
        timeout=10,
    )
    assert accepted.status_code == 202, accepted.text
    deliveries = {d["channel"]: d["id"] for d in accepted.json()["deliveries"]}
    # A 404 for a path holding a phone number: Django logs the path.
    missing = requests.get(
        f"{web.url}/api/v1/notifications/{OTHER_PHONE}", headers=auth, timeout=10
    )
    assert missing.status_code == 404
    wait_until(
        lambda: (
            Delivery.objects.filter(id__in=deliveries.values(), status=DeliveryStatus.SENT).count()
            == 2
        ),
        timeout=30,
    )
    web.stop()
    worker.stop()
    web_log, worker_log = web.log(), worker.log()

    for raw in RAW:
        assert raw not in web_log, f"{raw!r} in the web log"
        assert raw not in worker_log, f"{raw!r} in the worker log"
    assert "g***@example.org" in web_log  # the accepted notification's recipient
    assert "***6543" in web_log  # Django's "Not Found: <path>"
    assert "g***@example.org" in worker_log  # the email attempt
    assert "***1234" in worker_log  # the SMS attempt
    # The real values did reach the providers: only the logs are masked.
    assert EMAIL in str(sendgrid.accepted()[0]["body"])
    assert PHONE in str(twilio.accepted()[0]["body"])

    # One JSON object per line, each line about a delivery carrying its context.
    web_lines = _json_lines(web_log)
    assert any(line["message"] == "notification accepted" for line in web_lines)
    assert any(line["message"].startswith("Not Found") for line in web_lines)
    worker_lines = _json_lines(worker_log)
    notification_id = accepted.json()["id"]
    for channel, provider in (("email", "sendgrid"), ("sms", "twilio")):
        (sent,) = [
            line
            for line in worker_lines
            if line["message"] == "delivery sent" and line.get("channel") == channel
        ]
        assert sent["notification_id"] == notification_id
        assert sent["delivery_id"] == deliveries[channel]
        assert sent["provider"] == provider
        assert sent["attempt"] == 1
