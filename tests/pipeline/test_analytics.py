"""The analytics rollup after real workers: emails retried on transient failures, SendGrid's
signed event webhooks (delivered, open, click, bounce), beat's fold running beside them; the
rollup then equals a direct count over the timeline, a replayed webhook counts once, a fold
killed mid-transaction counts nothing and the next counts it all once; SMS cost by segments
(GSM-7 and UCS-2 bodies through the Twilio simulator); a delivery dead, replayed through the
dead-letter API and dead again counts one `dead` and one `accepted`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.analytics.fold_selectors import rollup_totals, timeline_totals
from apps.analytics.models import Rollup
from apps.analytics.services import rollup_fold, rollups_fold_pending
from apps.deliveries.models import Attempt, DeadLetter, Delivery, DeliveryEvent
from notifier.sms_segments import sms_segments
from tests.factories import ApiKeyFactory, RecipientFactory, TemplateFactory
from tests.pipeline.helpers import notify, wait_status
from tests.support.processes import BIN, Beat, LoggedProcess, Simulator, Worker, wait_until
from tests.support.webhooks import SendGridSigner, sendgrid_event

pytestmark = [pytest.mark.pipeline]

COSTS = json.dumps({"email": {"sendgrid": "0.0004"}, "sms": {"twilio": "0.0083"}})


@pytest.fixture
def signer(settings: Any) -> SendGridSigner:
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    return signer


@pytest.fixture
def beat(worker: Worker, tmp_path: Path) -> Iterator[Beat]:
    """Beat with the fold every second (the worker fixture runs it on the maintenance queue)."""
    proc = Beat(schedule=str(tmp_path / "beat-schedule"), env={"ANALYTICS_FOLD_INTERVAL": "1"})
    yield proc
    proc.stop()


def _notify_all(api: APIClient, recipients: list[str]) -> list[str]:
    body = {
        "recipients": recipients,
        "template": "order_shipped",
        "variables": {"order_id": "A-1001"},
        "channels": ["email"],
    }
    response = api.post("/api/v1/notifications", body, format="json")
    assert response.status_code == 202, response.content
    notification_id = response.json()["id"]
    deliveries = Delivery.objects.filter(notification_id=notification_id).order_by("recipient_id")
    return [str(pk) for pk in deliveries.values_list("id", flat=True)]


def _all_counted() -> bool:
    return not (
        DeliveryEvent.objects.filter(counted=False).exists()
        or Attempt.objects.filter(counted=False).exists()
    )


def _events(kind: str, ids: list[str], emails: dict[str, str]) -> list[dict[str, Any]]:
    return [
        sendgrid_event(kind, pk, emails[pk], sg_event_id=f"{kind}-{pk}", reason="550 no user")
        for pk in ids
    ]


def test_rollup_equals_the_timeline_after_retries_webhooks_and_replays(
    beat: Beat,
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
    signer: SendGridSigner,
) -> None:
    client = demo["client"]
    for n in range(2, 7):
        RecipientFactory(client=client, external_id=f"user-{n}")
    sendgrid.fault(kind="status", status=503, count=3)  # three attempts fail, then retried

    ids = _notify_all(api, [f"user-{n}" for n in range(1, 7)])
    for pk in ids:
        wait_status(pk, "sent", timeout=60)
    emails = {
        str(pk): email
        for pk, email in Delivery.objects.filter(id__in=ids).values_list("id", "recipient__email")
    }
    delivered = _events("delivered", ids[:5], emails)
    opens = _events("open", ids[:3], emails)
    clicks = _events("click", ids[:2], emails)
    bounce = _events("bounce", ids[5:], emails)
    for batch in (delivered, opens, clicks, bounce):
        assert signer.post(Client(), batch).status_code == 200
    wait_until(_all_counted, timeout=30)  # beat's folds, on the worker

    totals = rollup_totals()
    assert totals == timeline_totals()
    assert totals == {
        "accepted": 6,
        "skipped": 0,
        "digested": 0,
        "cancelled": 0,
        "sent": 6,
        "delivered": 5,
        "opened": 3,
        "clicked": 2,
        "read": 0,
        "failed": 1,
        "dead": 0,
        "cost_micros": 6 * 400,  # one accepted attempt each; the three 503s cost nothing
    }
    assert Attempt.objects.filter(outcome="transient").count() == 3
    sent_row = Rollup.objects.get(provider="sendgrid", variant="")
    assert sum(sent_row.accept_to_sent_ms_hist) == 6
    assert sum(sent_row.sent_to_delivered_ms_hist) == 5
    assert sent_row.accept_to_sent_ms_sum > 0

    # The same webhooks again, as SendGrid retries them: nothing more is counted.
    for batch in (delivered, opens, clicks, bounce, opens):
        assert signer.post(Client(), batch).status_code == 200
    wait_until(_all_counted, timeout=30)
    rollups_fold_pending()
    assert rollup_totals() == totals == timeline_totals()


def test_dead_replayed_and_dead_again_counts_one_dead_and_one_accepted(
    worker: Worker, twilio: Simulator, api: APIClient, demo: dict[str, object], settings: Any
) -> None:
    # One attempt an SMS, every one refused (503): dead at once, and again after the replay.
    settings.DELIVERY_MAX_ATTEMPTS = {**settings.DELIVERY_MAX_ATTEMPTS, "sms": 1}
    twilio.fault(kind="status", status=503)
    delivery_id = notify(api, channels=["sms"])["deliveries"][0]["id"]
    wait_status(delivery_id, "dead", timeout=40)
    letter = DeadLetter.objects.get(delivery_id=delivery_id)

    _, raw = ApiKeyFactory.create_with_raw(is_ops=True, name="oncall")
    ops = APIClient()
    ops.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ops.post(f"/api/v1/dead-letters/{letter.pk}/replay").status_code == 200
    wait_until(
        lambda: DeliveryEvent.objects.filter(delivery_id=delivery_id, status="dead").count() == 2,
        timeout=40,
    )

    timeline = DeliveryEvent.objects.filter(delivery_id=delivery_id).order_by("id")
    assert list(timeline.values_list("status", "counted")) == [
        ("queued", False),  # the creation: accepted
        ("dead", False),
        ("queued", True),  # the replay: no counter, never in the fold's queue
        ("dead", False),  # waits, and is no first
    ]
    assert rollups_fold_pending().events == 3
    totals = rollup_totals()
    assert totals == timeline_totals()
    assert (totals["accepted"], totals["dead"], totals["sent"]) == (1, 1, 0)
    assert sum(totals.values()) == 2
    assert Rollup.objects.get(provider="twilio").dead == 1


FOLD_AND_HOLD = """
import django, sys, time
django.setup()
from django.db import transaction
from apps.analytics.services import rollup_fold
with transaction.atomic():
    folded = rollup_fold()
    print(f"held {folded.events} {folded.attempts}", flush=True)
    time.sleep(120)
"""


def test_a_fold_killed_mid_transaction_counts_nothing_and_the_next_counts_once(
    worker: Worker, sendgrid: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    for n in range(2, 5):
        RecipientFactory(client=demo["client"], external_id=f"user-{n}")
    for pk in _notify_all(api, [f"user-{n}" for n in range(1, 5)]):
        wait_status(pk, "sent", timeout=60)
    events, attempts = DeliveryEvent.objects.count(), Attempt.objects.count()

    folder = LoggedProcess([str(BIN / "python"), "-c", FOLD_AND_HOLD], name="fold", env=None)
    try:
        held = wait_until(lambda: re.search(r"^held (\d+) (\d+)$", folder.log(), re.M), timeout=60)
        assert held.groups() == (str(events), str(attempts))
        assert rollup_fold().rows == 0  # every row is held: this fold skips them all
        folder.kill()  # SIGKILL mid-transaction: PostgreSQL rolls it back
        wait_until(lambda: not folder.alive(), timeout=10)
    finally:
        folder.stop()

    assert Rollup.objects.count() == 0
    wait_until(lambda: rollups_fold_pending().events == events, timeout=20)
    assert _all_counted()
    assert rollup_totals() == timeline_totals()
    assert rollup_totals()["accepted"] == rollup_totals()["sent"] == 4


GSM7_LONG = "Your order {{ order_id }} has shipped. " + "Track it any time at example.com. " * 5
UNICODE = "Заказ {{ order_id }} отправлен. " + "Спасибо за покупку! " * 7


def test_sms_cost_counts_gsm7_and_ucs2_segments_of_the_body_sent(
    worker_factory: Any, twilio: Simulator, api: APIClient, demo: dict[str, object]
) -> None:
    client = demo["client"]
    for key, text in (("sms_long", GSM7_LONG), ("sms_unicode", UNICODE)):
        TemplateFactory(
            client=client, key=key, variants=[{"channel": "sms", "locale": "en", "body": text}]
        )
    worker_factory(env={"ANALYTICS_COSTS": COSTS})
    for key in ("sms_long", "sms_unicode"):
        pk = notify(api, channels=["sms"], template=key)["deliveries"][0]["id"]
        wait_status(pk, "sent", timeout=60)

    bodies = {r["body"]["Body"]: r for r in twilio.requests()}
    segments = {body: sms_segments(body) for body in bodies}
    assert sorted((s.encoding, s.count) for s in segments.values()) == [("gsm7", 2), ("ucs2", 3)]
    rollups_fold_pending()

    cost = dict(
        Rollup.objects.filter(provider="twilio").values_list("template__key", "cost_micros")
    )
    assert cost == {"sms_long": 2 * 8300, "sms_unicode": 3 * 8300}
    per_attempt = Attempt.objects.values_list(
        "delivery__notification__template__key", "cost_micros"
    )
    assert dict(per_attempt) == cost
