"""The webhook admin: an endpoint's page shows its latest attempts; the dead-letter action
replays dead messages (of enabled endpoints) through the same service as the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.webhooks.models import MessageStatus, WebhookMessage
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
