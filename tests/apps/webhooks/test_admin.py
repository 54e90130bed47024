"""The webhook admin: an endpoint's page shows its latest attempts; the dead-letter action
replays dead messages (of enabled endpoints) through the same service as the API."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from apps.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from apps.webhooks.presence import clients_with_endpoints
from tests.factories import WebhookAttemptFactory, WebhookEndpointFactory, WebhookMessageFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def admin() -> Client:
    browser = Client()
    browser.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return browser


def test_the_endpoint_page_shows_its_latest_attempts(admin: Client) -> None:
    attempt = WebhookAttemptFactory(response_excerpt="upstream exploded", status_code=502)
    other = WebhookAttemptFactory(response_excerpt="someone else's")

    page = admin.get(f"/admin/webhooks/webhookendpoint/{attempt.endpoint.pk}/change/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "upstream exploded" in text
    assert attempt.message.event_id in text
    assert "someone else&#x27;s" not in text
    assert other.message.event_id not in text
    assert attempt.endpoint.secret not in text  # the signing secret is never shown


def test_the_replay_action_requeues_dead_messages_of_enabled_endpoints(admin: Client) -> None:
    dead = WebhookMessageFactory(state=MessageStatus.DEAD, attempts=8)
    off = WebhookMessageFactory(
        state=MessageStatus.DEAD, endpoint=WebhookEndpointFactory(enabled=False)
    )
    delivered = WebhookMessageFactory(state=MessageStatus.DELIVERED)

    response = admin.post(
        "/admin/webhooks/webhookmessage/",
        {"action": "replay", "_selected_action": [dead.pk, off.pk, delivered.pk]},
        follow=True,
    )

    assert response.status_code == 200
    dead.refresh_from_db()
    assert (dead.state, dead.attempts, dead.replayed_by) == ("pending", 0, "admin:ops")
    assert WebhookMessage.objects.get(pk=off.pk).state == MessageStatus.DEAD
    assert WebhookMessage.objects.get(pk=delivered.pk).state == MessageStatus.DELIVERED
    text = response.content.decode()
    assert "Replayed 1 message(s)." in text
    assert "2 not replayed" in text


def change(admin: Client, endpoint: WebhookEndpoint, **fields: Any) -> Any:
    """POST the endpoint's change form with its current values, and `fields` over them."""
    form = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": json.dumps(endpoint.events),
        "include_content": "on" if endpoint.include_content else "",
        "enabled": "on" if endpoint.enabled else "",
        **fields,
    }
    form = {k: v for k, v in form.items() if v != ""}
    return admin.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", form)


def test_enabling_in_the_admin_starts_afresh_and_is_heard_at_once(
    admin: Client, clean_redis: Any
) -> None:
    endpoint = WebhookEndpointFactory(
        enabled=False,
        failing_since=timezone.now() - dt.timedelta(days=6),
        disabled_reason="every attempt failed for 5 days",
        disabled_at=timezone.now(),
    )
    assert clients_with_endpoints() == frozenset()  # this process caches: nobody

    answer = change(admin, endpoint, enabled="on")

    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.failing_since is None  # not disabled again at its next failure
    assert endpoint.disabled_reason == ""
    assert endpoint.disabled_at is None
    assert clients_with_endpoints() == frozenset({endpoint.client_id})  # the cache was told


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("url", "ftp://hooks.example.com/x", "https://"),
        ("url", "https://user:pw@hooks.example.com/x", "credentials"),
        ("events", json.dumps("delivery.sent"), "list"),
        ("events", json.dumps(["delivery.nope"]), "Unknown event types"),
        ("events", json.dumps([]), "list"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(
    admin: Client, field: str, value: str, says: str
) -> None:
    endpoint = WebhookEndpointFactory()

    answer = change(admin, endpoint, **{field: value})

    assert answer.status_code == 200  # the form again, with its error
    assert says in answer.content.decode()
    saved = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (saved.url, saved.events) == (endpoint.url, endpoint.events)


def test_deleting_in_the_admin_tells_the_presence_cache(admin: Client, clean_redis: Any) -> None:
    endpoint = WebhookEndpointFactory()
    assert clients_with_endpoints() == frozenset({endpoint.client_id})

    answer = admin.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"})

    assert answer.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert clients_with_endpoints() == frozenset()
