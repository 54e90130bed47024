"""The operator dashboard: staff only, real numbers from the database and Redis."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from urllib.parse import quote_plus

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from apps.deliveries.guards import provider_breaker
from apps.deliveries.queueing import publish_sends
from apps.deliveries.stats import deliveries_hourly
from tests.factories import ApiClientFactory
from tests.support.history import PATTERN, History, seed_history

pytestmark = [pytest.mark.django_db]

CHART = '<svg xmlns="http://www.w3.org/2000/svg" viewBox'


@pytest.fixture
def history() -> History:
    return seed_history(client=ApiClientFactory(), now=timezone.now())


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw", is_staff=True))
    return client


def _current_hour_latencies() -> list[float]:
    return sorted((i + 1) / 10 for pattern in PATTERN.values() for i in range(pattern(0)[0]))


def test_hourly_stats_count_each_outcome_and_latency_percentiles(history: History) -> None:
    stats = deliveries_hourly(now=history.now)

    assert len(stats.hours) == 24
    assert stats.hours[-1] == history.now.replace(minute=0, second=0, microsecond=0)
    for channel, pattern in PATTERN.items():
        for status_index, status in enumerate(("sent", "failed", "dead")):
            expected = [pattern(ago)[status_index] for ago in range(23, -1, -1)]
            assert stats.outcomes[channel][status] == expected, (channel, status)
    values = _current_hour_latencies()
    assert stats.p50[-1] == pytest.approx(statistics.quantiles(values, n=2, method="inclusive")[0])
    assert stats.p95[-1] == pytest.approx(
        statistics.quantiles(values, n=20, method="inclusive")[18]
    )
    assert all(p is not None for p in stats.p95)


def test_dashboard_renders_charts_queues_breakers_and_dead_letters_for_staff(
    history: History, staff: Client, clean_redis: redis.Redis
) -> None:
    publish_sends([("00000000-0000-0000-0000-000000000001", "sms", "high")])
    breaker = provider_breaker("console-email")
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()

    response = staff.get("/admin/dashboard/")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count(CHART) == 5  # four channels and the latency chart
    for channel, totals in history.totals.items():
        assert (
            f"{channel} in 24 h: sent {totals['sent']}, failed {totals['failed']}, "
            f"dead {totals['dead']}"
        ) in page
        assert f"{channel}: sent / failed / dead per hour" in page
    values = _current_hour_latencies()
    p50 = statistics.quantiles(values, n=2, method="inclusive")[0]
    assert f"p50: {p50:.2f}s" in page
    assert re.search(r"<td>sms\.high</td><td>1</td>", page)
    assert re.search(r"<td>email\.normal</td><td>0</td>", page)
    assert re.search(r'<td>console-email</td><td class="ops-state-open">open</td>', page)
    assert re.search(r'<td>console-sms</td><td class="ops-state-closed">closed</td>', page)
    for (channel, reason), count in history.dead_letters.items():
        link = (
            f"/admin/deliveries/deadletter/?channel={channel}&amp;reason={quote_plus(reason)}"
            "&amp;replayed_at__isempty=1"
        )
        assert f'<a href="{link}">{reason}</a></td><td>{count}</td>' in page
    assert 'href="/admin/deliveries/deadletter/"' in page


def test_dashboard_is_linked_from_the_admin_index(staff: Client) -> None:
    assert 'href="/admin/dashboard/"' in staff.get("/admin/").content.decode()


def test_dashboard_sends_anyone_else_to_the_login(client: Client) -> None:
    anonymous = client.get("/admin/dashboard/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/admin/dashboard/"

    client.force_login(User.objects.create_user("customer", password="pw", is_staff=False))
    not_staff = client.get("/admin/dashboard/")
    assert not_staff.status_code == 302
    assert not_staff["Location"].startswith("/admin/login/")
    assert "<svg" not in not_staff.content.decode()


def test_an_empty_day_renders_without_data(staff: Client, clean_redis: redis.Redis) -> None:
    response = staff.get("/admin/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count(CHART) == 5
    assert "No dead letters waiting." in page
    assert "email in 24 h: sent 0, failed 0, dead 0" in page


def test_old_history_is_outside_the_window(staff: Client) -> None:
    seed_history(client=ApiClientFactory(), now=timezone.now() - dt.timedelta(days=2), hours=3)
    stats = deliveries_hourly()
    assert sum(sum(v) for c in stats.outcomes.values() for v in c.values()) == 0
    assert stats.p50 == [None] * 24
