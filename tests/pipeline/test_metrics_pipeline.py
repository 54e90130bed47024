"""Metrics through the real pipeline: API (this process, scraped at /metrics) -> Redis -> a real
Celery worker (scraped on its WORKER_METRICS_PORT) -> SendGrid SDK -> simulator with faults.
Every counter and histogram must move by exactly what happened."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries.models import Attempt, Delivery, DeliveryStatus
from notifier.queues import channel_queues
from tests.factories import RecipientFactory
from tests.support import prom
from tests.support.processes import Simulator, Worker, free_port, wait_until

pytestmark = [pytest.mark.pipeline]


@pytest.fixture
def email_worker(
    transactional_db: None, clean_redis: object, worker_env: dict[str, str]
) -> Iterator[tuple[Worker, str]]:
    """A real worker on the email queues only, serving its metrics on a free port."""
    port = free_port()
    proc = Worker(
        queues=channel_queues("email"),
        env={**worker_env, "WORKER_METRICS_PORT": str(port), "WORKER_METRICS_ADDRESS": "127.0.0.1"},
        name="metrics",
    )
    yield proc, f"http://127.0.0.1:{port}/metrics"
    proc.stop()


def _web_metrics() -> prom.Samples:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return prom.parse(response.content.decode())


def _notify(api: APIClient, recipient: str, channel: str, priority: str = "normal") -> str:
    response = api.post(
        "/api/v1/notifications",
        {
            "recipient": recipient,
            "template": "order_shipped",
            "variables": {"order_id": "A-7"},
            "channels": [channel],
            "priority": priority,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    return str(response.json()["deliveries"][0]["id"])


def test_counters_and_histograms_move_by_exactly_what_the_pipeline_did(
    email_worker: tuple[Worker, str],
    sendgrid: Simulator,
    api: APIClient,
    demo: dict[str, object],
) -> None:
    worker, worker_url = email_worker
    client = demo["client"]
    RecipientFactory(client=client, external_id="ok-2")
    RecipientFactory(client=client, external_id="flaky", email="flaky@example.com")
    RecipientFactory(client=client, external_id="broken", email="broken@example.com")
    # One 503 for the flaky address (then it succeeds), a permanent 400 for the broken one.
    sendgrid.fault(kind="status", status=503, count=1, match="flaky@example.com")
    sendgrid.fault(kind="status", status=400, match="broken@example.com")
    web_before = _web_metrics()
    worker_before = prom.fetch(worker_url)

    email_ids = [_notify(api, r, "email") for r in ("user-1", "ok-2", "flaky", "broken")]
    # No worker consumes sms: this one waits in sms.high, where the queue-depth gauge sees it.
    _notify(api, "user-1", "sms", priority="high")

    final = (DeliveryStatus.SENT, DeliveryStatus.DEAD)
    wait_until(
        lambda: Delivery.objects.filter(id__in=email_ids, status__in=final).count() == 4,
        timeout=60,
    )
    # The broken address is fixed at the provider; an operator replays the dead letter.
    assert Delivery.objects.get(id=email_ids[3]).status == DeliveryStatus.DEAD
    sendgrid.clear_faults()
    out = StringIO()
    call_command("replay_dead_letters", "--channel", "email", "--since", "1h", stdout=out)
    assert out.getvalue().strip() == "replayed 1 dead letter(s)"
    wait_until(
        lambda: Delivery.objects.filter(id__in=email_ids, status=DeliveryStatus.SENT).count() == 4,
        timeout=60,
    )
    web = _web_metrics()
    samples = prom.fetch(worker_url)

    def web_delta(name: str, **labels: str) -> float:
        return prom.value(web, name, **labels) - prom.value(web_before, name, **labels)

    def worker_delta(name: str, **labels: str) -> float:
        return prom.value(samples, name, **labels) - prom.value(worker_before, name, **labels)

    # Web: what the API accepted, and the queues as Redis holds them now.
    assert (
        web_delta("notifier_notifications_received_total", channel="email", priority="normal") == 4
    )
    assert web_delta("notifier_notifications_received_total", channel="sms", priority="high") == 1
    assert prom.value(web, "notifier_queue_depth", queue="sms.high") == 1
    assert prom.value(web, "notifier_queue_depth", queue="sms.normal") == 0
    for queue in channel_queues("email"):
        assert prom.value(web, "notifier_queue_depth", queue=queue) == 0
    assert prom.value(web, "notifier_queue_depth_up") == 1
    # Breakers read from Redis at scrape time: one 503 is not enough to open sendgrid's.
    breaker = ("notifier_circuit_breaker_state", frozenset({("provider", "sendgrid")}))
    assert web[breaker] == 0
    # django-prometheus: five POSTs answered 202 by this process.
    assert web_delta("django_http_responses_total_by_status_total", status="202") == 5

    assert web_delta("notifier_dead_letters_replayed_total", channel="email") == 1

    # Worker: three sent (one after a retry), one dead at once and sent after its replay.
    sent = {"channel": "email", "provider": "sendgrid"}
    assert worker_delta("notifier_deliveries_finished_total", **sent, status="sent") == 4
    assert worker_delta("notifier_deliveries_finished_total", **sent, status="dead") == 1
    assert worker_delta("notifier_retries_total", channel="email", reason="sendgrid 503") == 1
    assert (
        worker_delta("notifier_dead_letters_created_total", channel="email", kind="permanent") == 1
    )
    calls = "notifier_provider_request_seconds"
    for outcome, count in (("sent", 4), ("transient", 1), ("permanent", 1)):
        labels = {"provider": "sendgrid", "outcome": outcome}
        assert worker_delta(f"{calls}_count", **labels) == count
        assert worker_delta(f"{calls}_bucket", **labels, le="+Inf") == count
    # The histogram's sum is the attempts' recorded latencies, to the millisecond.
    latencies = Attempt.objects.filter(delivery_id__in=email_ids).values_list(
        "latency_ms", "outcome"
    )
    assert len(latencies) == 6
    for outcome in ("sent", "transient", "permanent"):
        expected = sum(ms for ms, o in latencies if o == outcome) / 1000
        got = worker_delta(f"{calls}_sum", provider="sendgrid", outcome=outcome)
        assert got == pytest.approx(expected, abs=1e-6)
    # Accept -> sent: one observation per sent delivery, summing to sent_at - created_at.
    assert worker_delta("notifier_accept_to_sent_seconds_count", channel="email") == 4
    delivered = Delivery.objects.filter(id__in=email_ids, status=DeliveryStatus.SENT)
    expected_latency = sum((d.sent_at - d.created_at).total_seconds() for d in delivered)
    assert worker_delta("notifier_accept_to_sent_seconds_sum", channel="email") == pytest.approx(
        expected_latency, abs=1e-3
    )
    assert len(sendgrid.accepted()) == 4
    assert "Traceback" not in worker.log()
