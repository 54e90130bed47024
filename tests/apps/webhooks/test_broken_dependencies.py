"""The webhook endpoints API with PostgreSQL or Redis unreachable: a 503 with Retry-After and
nothing saved, as the rest of the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.webhooks.models import WebhookEndpoint
from tests.apps.deliveries.test_broken_dependencies import (
    assert_unavailable,
    database_unreachable_now,
)
from tests.support.redis_server import unreachable_url

URL = "/api/v1/webhook-endpoints"
BODY = {"url": "https://hooks.example.com/x", "events": ["delivery.sent"]}


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_database_down_is_503(transactional_db: None, api: APIClient, method: str) -> None:
    with database_unreachable_now():
        response = getattr(api, method)(URL, BODY, format="json")

    assert_unavailable(response)
    assert not WebhookEndpoint.objects.exists()


def test_redis_down_is_503_for_a_new_endpoint_and_saves_nothing(
    transactional_db: None, api: APIClient
) -> None:
    # Every process must learn of a new endpoint (presence.py's version in Redis): without
    # Redis the endpoint is not created, rather than created unheard.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "REDIS_URL", unreachable_url())
        from apps.clients import auth

        auth._key_bucket.cache_clear()
        try:
            response = api.post(URL, BODY, format="json")
        finally:
            auth._key_bucket.cache_clear()

    assert_unavailable(response)
    assert not WebhookEndpoint.objects.exists()


def test_a_test_ping_with_the_broker_down_is_still_accepted(
    transactional_db: None, api: APIClient, settings: Any
) -> None:
    created = api.post(URL, BODY, format="json").json()
    from tests.support.redis_server import broker_at

    # Committed first, published after: a lost publish is the sweep's to repair.
    with broker_at(unreachable_url()):
        response = api.post(f"{URL}/{created['id']}/test")

    assert response.status_code == 202, response.content
    assert WebhookEndpoint.objects.get(pk=created["id"]).messages.get().state == "pending"
