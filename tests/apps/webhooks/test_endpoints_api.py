"""The webhook endpoints API: create (secret shown once), list, read, change, delete, rotate,
test; each client sees only its own; hostile input is a 400 naming the field, never a 500."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage
from tests.apps.deliveries.test_dead_letters_api import assert_error

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/webhook-endpoints"
BODY = {"url": "https://hooks.example.com/n", "events": ["delivery.sent", "delivery.failed"]}


def create(api: APIClient, **extra: Any) -> dict[str, Any]:
    response = api.post(URL, {**BODY, **extra}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_create_shows_the_secret_once_and_never_again(api: APIClient) -> None:
    created = create(api, description="alerts")

    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["delivery.sent", "delivery.failed"]
    assert created["enabled"] is True
    assert created["include_content"] is False
    shown = api.get(f"{URL}/{created['id']}").json()
    assert "secret" not in shown
    assert shown["description"] == "alerts"
    listed = api.get(URL).json()
    assert [e["id"] for e in listed["results"]] == [created["id"]]
    assert "secret" not in listed["results"][0]
    assert listed["next"] is None


def test_patch_changes_url_events_and_enabled(api: APIClient) -> None:
    created = create(api)

    response = api.patch(
        f"{URL}/{created['id']}",
        {"url": "https://other.example.com/x", "events": ["delivery.dead"], "enabled": False},
        format="json",
    )

    assert response.status_code == 200, response.content
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert (endpoint.url, endpoint.events, endpoint.enabled) == (
        "https://other.example.com/x",
        ["delivery.dead"],
        False,
    )


def test_enabling_an_endpoint_the_service_disabled_starts_it_afresh(api: APIClient) -> None:
    created = create(api)
    WebhookEndpoint.objects.filter(pk=created["id"]).update(
        enabled=False,
        disabled_reason="every attempt failed for 5 days",
        disabled_at=timezone.now(),
        failing_since=timezone.now() - dt.timedelta(days=5),
    )

    response = api.patch(f"{URL}/{created['id']}", {"enabled": True}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["enabled"], body["disabled_reason"], body["failing_since"]) == (True, "", None)


def test_rotate_gives_a_new_secret_and_keeps_the_old_one_for_24_hours(api: APIClient) -> None:
    created = create(api)
    before = timezone.now()

    response = api.post(f"{URL}/{created['id']}/rotate-secret")

    assert response.status_code == 200, response.content
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.previous_secret == created["secret"]
    expires = endpoint.previous_secret_expires_at
    assert expires is not None
    assert (
        dt.timedelta(hours=23, minutes=59) < expires - before <= dt.timedelta(hours=24, seconds=5)
    )


def test_test_queues_a_ping(api: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    created = create(api)

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"{URL}/{created['id']}/test")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["type"] == "ping"
    assert body["id"].startswith("msg_")
    assert body["payload"] == {
        "id": body["id"],
        "type": "ping",
        "created_at": body["payload"]["created_at"],
        "data": {"endpoint_id": created["id"], "message": "ping"},
    }
    message = WebhookMessage.objects.get(event_id=body["id"])
    assert message.state == MessageStatus.PENDING
    assert len(callbacks) == 1  # the publish, after commit


def test_delete_removes_the_endpoint_and_its_messages(api: APIClient) -> None:
    created = create(api)
    api.post(f"{URL}/{created['id']}/test")

    response = api.delete(f"{URL}/{created['id']}")

    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookMessage.objects.exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"enabled": False}),
        ("delete", "", None),
        ("post", "/rotate-secret", None),
        ("post", "/test", None),
        ("get", "/messages", None),
        ("post", "/messages/msg_0/replay", None),
    ],
)
def test_another_clients_endpoint_is_a_404_and_untouched(
    api: APIClient, other_api: APIClient, method: str, suffix: str, body: Any
) -> None:
    created = create(api)

    response = getattr(other_api, method)(f"{URL}/{created['id']}{suffix}", body, format="json")

    assert_error(response, 404, "not_found")
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.enabled is True
    assert endpoint.secret == created["secret"]
    assert not WebhookMessage.objects.exists()
    assert other_api.get(URL).json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "url": "not a url"}, "url"),
        ({**BODY, "url": "ftp://example.com/x"}, "url"),
        ({**BODY, "url": "https://user:pw@example.com/x"}, "url"),
        ({**BODY, "url": "https://"}, "url"),
        ({**BODY, "url": "https://example.com:99999/x"}, "url"),
        ({**BODY, "url": "https://exa mple.com/x"}, "url"),
        ({**BODY, "url": "https://example.com/\x00"}, "url"),
        ({**BODY, "url": "https://example.com/" + "a" * 3000}, "url"),
        ({**BODY, "url": 42}, "url"),
        ({**BODY, "url": ["https://example.com"]}, "url"),
        ({**BODY, "events": ["delivery.exploded"]}, "events"),
        ({**BODY, "events": ["ping"]}, "events"),
        ({**BODY, "events": []}, "events"),
        ({**BODY, "events": "delivery.sent"}, "events"),
        ({**BODY, "description": "x" * 100_000}, "description"),
        ({**BODY, "include_content": "maybe"}, "include_content"),
        ({"events": ["delivery.sent"]}, "url"),
    ],
)
def test_hostile_input_is_a_400_naming_the_field(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = api.post(URL, body, format="json")

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_a_body_that_is_not_json_is_refused_clearly(api: APIClient) -> None:
    response = api.generic("POST", URL, b"{not json", content_type="application/json")

    assert_error(response, 400, "parse_error")
    response = api.generic("POST", URL, b"url=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert not WebhookEndpoint.objects.exists()


def test_a_patch_with_nothing_or_junk_is_a_400(api: APIClient) -> None:
    created = create(api)

    assert_error(api.patch(f"{URL}/{created['id']}", {}, format="json"), 400, "invalid")
    error = assert_error(
        api.patch(f"{URL}/{created['id']}", {"events": ["nope"]}, format="json"), 400, "invalid"
    )
    assert "events" in error["fields"]
    assert_error(api.get(f"{URL}/not-a-uuid"), 404, "not_found")
    assert WebhookEndpoint.objects.get(pk=created["id"]).events == BODY["events"]


def test_without_a_key_it_is_a_401(client: Any) -> None:
    assert client.get(URL).status_code == 401
