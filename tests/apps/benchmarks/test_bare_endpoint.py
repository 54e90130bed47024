"""The ingestion ceiling `make bench` compares the API with: off unless BENCH_ENDPOINTS=1."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.benchmarks.models import BenchRow
from apps.benchmarks.tasks import noop

BODY = {
    "recipient": "user-1",
    "template": "order_shipped",
    "variables": {"order_id": "A-1"},
    "channels": ["email", "sms"],
}


@pytest.mark.django_db
def test_bench_endpoint_is_off_by_default() -> None:
    response = APIClient().post("/bench/notifications", BODY, format="json")

    assert response.status_code == 404
    assert BenchRow.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.urls("tests.apps.benchmarks.urls_enabled")
def test_bench_endpoint_validates_and_inserts_one_row() -> None:
    response = APIClient().post("/bench/notifications", BODY, format="json")

    assert response.status_code == 202
    (row,) = BenchRow.objects.all()
    assert response.json() == {"id": row.pk, "status": "accepted"}
    assert row.payload == BODY


@pytest.mark.django_db
@pytest.mark.urls("tests.apps.benchmarks.urls_enabled")
def test_bench_endpoint_rejects_bad_input_in_the_error_shape() -> None:
    response = APIClient().post(
        "/bench/notifications", {"template": "x", "channels": ["fax"]}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) >= {"channels", "recipient"}
    assert BenchRow.objects.count() == 0


def test_noop_task_does_nothing() -> None:
    assert noop("any-delivery-id") is None
