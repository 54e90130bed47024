"""An endpoint that has failed every attempt for 5 days is disabled: its client's operators get
an email (django-templated-mail, templates/email/), the admin shows a notice, and its messages
stop; one success in between starts the count again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.webhooks.alerts import endpoint_disable_if_failing
from apps.webhooks.attempts import message_attempt
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.services import (
    endpoint_create,
    endpoint_ping,
    endpoint_rotate_secret,
    endpoint_update,
)
from tests.factories import WebhookAttemptFactory, WebhookMessageFactory
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.django_db]


def failing_endpoint(
    client: Any, receiver: Receiver, *, days: float, recent_failures: int = 2
) -> WebhookEndpoint:
    """Failing for `days`, with `recent_failures` failed attempts in the last hours."""
    receiver.script(Reply(500))
    endpoint = endpoint_create(
        client=client,
        url=receiver.url,
        events_=["delivery.sent"],
        description="billing alerts",
        include_content=False,
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - dt.timedelta(days=days)
    )
    for hours in range(recent_failures):
        WebhookAttemptFactory(
            message=WebhookMessageFactory(endpoint=endpoint),
            started_at=timezone.now() - dt.timedelta(hours=hours + 1),
        )
    return endpoint


def test_failing_for_5_days_disables_emails_the_operators_and_shows_a_notice(
    demo: dict[str, Any], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    client = demo["client"]
    client.operator_emails = "ops@acme.example, oncall@acme.example"
    client.save()
    endpoint = failing_endpoint(client, receiver, days=5.01)
    message = endpoint_ping(endpoint=endpoint)
    pending = endpoint_ping(endpoint=endpoint)

    with django_capture_on_commit_callbacks(execute=True):
        message_attempt(message_id=message.pk)

    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_reason == "every attempt failed for 5 days"
    (email,) = mail.outbox
    assert email.to == ["ops@acme.example", "oncall@acme.example"]
    assert email.subject == f"Webhook endpoint disabled: {receiver.url}"
    assert f"Notifier disabled your webhook endpoint {receiver.url} (billing alerts" in email.body
    assert "every attempt failed for 5 days" in email.body
    assert str(endpoint.pk) in email.body
    html = {mimetype: content for content, mimetype in email.alternatives}["text/html"]
    assert f"<code>{receiver.url}</code>" in html
    # The admin's notice, on the index and on the endpoints' list.
    admin = Client()
    admin.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    index = admin.get("/admin/").content.decode()
    assert 'id="webhook-notices"' in index
    assert f"{receiver.url}</a> of {client.name} was disabled by the service" in index
    listed = admin.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "was disabled by the service" in listed
    # Its messages stop: what was pending is not sent, but kept as a dead letter.
    receiver.script(Reply(200))
    assert message_attempt(message_id=pending.pk) == "dead"
    assert receiver.received == []


def test_not_yet_5_days_keeps_it_enabled_and_sends_no_email(
    demo: dict[str, Any], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint = failing_endpoint(demo["client"], receiver, days=4.9)
    message = endpoint_ping(endpoint=endpoint)

    with django_capture_on_commit_callbacks(execute=True):
        message_attempt(message_id=message.pk)

    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    assert mail.outbox == []
    assert 'id="webhook-notices"' not in admin_index()


def test_a_success_ends_the_failing_streak(demo: dict[str, Any], receiver: Receiver) -> None:
    endpoint = failing_endpoint(demo["client"], receiver, days=4.9)
    receiver.script(Reply(204, body=b""))

    message_attempt(message_id=endpoint_ping(endpoint=endpoint).pk)

    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_without_operators_the_email_goes_to_webhooks_alert_emails(
    demo: dict[str, Any],
    receiver: Receiver,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOKS_ALERT_EMAILS = ["platform@example.com"]
    endpoint = failing_endpoint(demo["client"], receiver, days=6)

    with django_capture_on_commit_callbacks(execute=True):
        message_attempt(message_id=endpoint_ping(endpoint=endpoint).pk)

    assert [m.to for m in mail.outbox] == [["platform@example.com"]]


def admin_index() -> str:
    admin = Client()
    user = User.objects.filter(username="ops").first() or User.objects.create_superuser(
        "ops", "ops@example.com", "pw"
    )
    admin.force_login(user)
    return admin.get("/admin/").content.decode()


def test_sparse_failures_do_not_disable_it(
    demo: dict[str, Any], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    """Failing for 6 days, but this is only the second failed attempt in 24 hours."""
    endpoint = failing_endpoint(demo["client"], receiver, days=6, recent_failures=1)

    with django_capture_on_commit_callbacks(execute=True):
        message_attempt(message_id=endpoint_ping(endpoint=endpoint).pk)

    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    assert mail.outbox == []


def test_a_new_url_starts_the_failing_streak_afresh(
    demo: dict[str, Any], receiver: Receiver
) -> None:
    endpoint = failing_endpoint(demo["client"], receiver, days=4.9)
    other = Receiver(Reply(500))
    try:
        endpoint_update(endpoint=endpoint, changes={"url": other.url})
    finally:
        other.stop()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_rotating_twice_keeps_only_the_one_before(demo: dict[str, Any]) -> None:
    """Documented: one old secret is kept; a second rotation in the overlap drops the first."""
    endpoint = endpoint_create(
        client=demo["client"],
        url="https://hooks.example.com/x",
        events_=["delivery.sent"],
        description="",
        include_content=False,
    )
    first = endpoint.secret
    second = endpoint_rotate_secret(endpoint=endpoint)
    third = endpoint_rotate_secret(endpoint=endpoint)

    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (third, second)
    assert first not in (endpoint.secret, endpoint.previous_secret)


def test_the_recent_failures_are_counted_up_to_the_threshold_only(
    demo: dict[str, Any], receiver: Receiver, settings: Any
) -> None:
    """A busy endpoint's day of failures is not counted in full: a LIMIT at the threshold."""
    settings.WEBHOOKS_DISABLE_MIN_RECENT_FAILURES = 3
    endpoint = failing_endpoint(demo["client"], receiver, days=6, recent_failures=10)

    with CaptureQueriesContext(connection) as queries:
        assert endpoint_disable_if_failing(endpoint_id=endpoint.pk, now=timezone.now())

    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "LIMIT 3" in counts[0]
