"""`ApiKey.last_used_at`: written by a request, at most once a minute per key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.clients.keycache import verified_keys
from apps.clients.models import ApiKey

pytestmark = [pytest.mark.django_db]


def _key_updates(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "clients_apikey"')
    ]


def test_a_request_records_when_the_key_was_used(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    key = api_key[0]
    assert key.last_used_at is None
    before = timezone.now()

    response = api.get("/api/v1/notifications")

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert before <= key.last_used_at <= timezone.now()


def test_a_second_request_within_the_minute_writes_nothing(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    assert api.get("/api/v1/notifications").status_code == 200
    first = ApiKey.objects.get(pk=api_key[0].pk).last_used_at

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/notifications").status_code == 200

    assert _key_updates(queries) == []
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at == first


def test_nor_does_a_process_that_reads_the_key_afresh(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    """Another process (or this one once its key cache expired) sees the recent time."""
    assert api.get("/api/v1/notifications").status_code == 200
    verified_keys.clear()

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/notifications").status_code == 200

    assert _key_updates(queries) == []


def test_a_use_more_than_a_minute_later_is_recorded(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    ApiKey.objects.filter(pk=api_key[0].pk).update(last_used_at=long_ago)

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/notifications").status_code == 200

    assert len(_key_updates(queries)) == 1
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at > long_ago


def test_a_failed_authentication_records_nothing(api_key: tuple[ApiKey, str]) -> None:
    client = APIClient()
    wrong = api_key[1][:-4] + "AAAA"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {wrong}")

    assert client.get("/api/v1/notifications").status_code == 401
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at is None
