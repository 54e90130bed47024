"""The sync client against the real service (conftest.py: started as `make run` starts it)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from notifier_client import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    NotifierClient,
    PermissionDeniedError,
    ValidationError,
)
from tests.conftest import Service


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


def delivery_status(client: NotifierClient, notification_id: str) -> str:
    (delivery,) = client.get_notification(notification_id)["deliveries"]
    return str(delivery["status"])


def test_send_is_accepted_with_its_delivery_and_sent(client: NotifierClient, user: str) -> None:
    accepted = client.send(
        "welcome", recipient=user, channels=["email"], variables={"order_id": "A-1"}
    )

    assert accepted["status"] == "accepted"
    (delivery,) = accepted["deliveries"]
    assert (delivery["recipient"], delivery["channel"]) == (user, "email")
    wait_for(lambda: delivery_status(client, accepted["id"]) == "sent")


def test_the_same_idempotency_key_returns_the_same_notification(
    client: NotifierClient, user: str
) -> None:
    key = str(uuid.uuid4())
    options: dict[str, Any] = {"channels": ["inapp"], "variables": {"order_id": "A-2"}}

    first = client.send("welcome", recipient=user, idempotency_key=key, **options)
    again = client.send("welcome", recipient=user, idempotency_key=key, **options)
    other = client.send("welcome", recipient=user, **options)  # a key of its own

    assert again == first
    assert other["id"] != first["id"]
    with pytest.raises(ConflictError) as conflict:
        client.send(
            "welcome",
            recipient=user,
            idempotency_key=key,
            channels=["inapp"],
            variables={"order_id": "A-3"},
        )
    assert conflict.value.status == 409
    listed = [n["id"] for n in client.iter_notifications(recipient=user, limit=1)]
    assert sorted(listed) == sorted([first["id"], other["id"]])


def test_invalid_input_is_a_validation_error_naming_the_field(
    client: NotifierClient, user: str
) -> None:
    with pytest.raises(ValidationError) as invalid:
        client.send("welcome", recipient=user, priority="urgent")  # type: ignore[arg-type]

    assert invalid.value.status == 400
    assert invalid.value.code == "invalid"
    assert list(invalid.value.fields) == ["priority"]
    assert client.list_notifications(recipient=user).results == []  # nothing was sent


def test_unknown_ids_are_not_found(client: NotifierClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get_notification(str(uuid.uuid4()))
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError):
        client.get_recipient("nobody-" + uuid.uuid4().hex)


def test_a_bad_key_is_an_authentication_error(service: Service) -> None:
    with (
        NotifierClient(service.url, "not-a-key") as stranger,
        pytest.raises(AuthenticationError) as refused,
    ):
        stranger.get_recipient("demo-user")

    assert refused.value.status == 401
    assert refused.value.code


def test_recipients_devices_and_tokens(client: NotifierClient) -> None:
    # Characters a path must escape. (Not `/`: the server decodes %2F before routing, so an id
    # with a slash, which it accepts inline in a notification, cannot be addressed in a path.)
    external_id = f"person {uuid.uuid4().hex[:8]}?#%é"
    created = client.upsert_recipient(external_id, email="p@example.com", data={"plan": "pro"})
    client.upsert_recipient(external_id, name="Grace")

    fetched = client.get_recipient(external_id)
    assert created["external_id"] == fetched["external_id"] == external_id
    assert (fetched["email"], fetched["name"], fetched["data"]) == (
        "p@example.com",
        "Grace",
        {"plan": "pro"},
    )
    device = client.register_device(external_id, "tok-" + uuid.uuid4().hex, "android")
    assert device["platform"] == "android"
    client.remove_device(external_id, device["token"])
    token = client.recipient_token(external_id, ttl_seconds=60)
    assert token["token"]
    assert token["expires_at"]

    client.erase_recipient(external_id)
    with pytest.raises(NotFoundError):
        client.get_recipient(external_id)


def test_preferences_and_the_preferences_link(client: NotifierClient, user: str) -> None:
    client.set_preferences(
        user,
        channels={"sms": False},
        categories={"marketing": {"email": False}},
        quiet_hours={"start": "22:00", "end": "07:00"},
    )

    preferences = client.get_preferences(user)
    assert preferences["channels"]["sms"] is False
    assert preferences["categories"]["marketing"]["email"] is False
    assert (preferences["quiet_hours"]["start"], preferences["quiet_hours"]["end"]) == (
        "22:00",
        "07:00",
    )
    link = client.preferences_link(user)
    assert "/preferences/" in link["url"]
    assert httpx.get(link["url"]).status_code == 200


def test_topics_and_subscribers(client: NotifierClient, user: str) -> None:
    key = f"order-{uuid.uuid4().hex[:8]}-watchers"
    others = [f"{user}-friend-{n}" for n in range(2)]
    client.put_topic(key, name="Order watchers")

    added = client.add_subscribers(key, [user, *({"id": o} for o in others)])
    assert (added["added"], added["subscribers"]) == (3, 3)
    page = client.list_subscribers(key, limit=2)
    assert len(page.results) == 2
    assert page.cursor is not None
    everyone = [s["recipient"] for s in client.iter_subscribers(key, limit=2)]
    assert sorted(everyone) == sorted([user, *others])
    assert key in [t["key"] for t in client.iter_topics(limit=50)]
    removed = client.remove_subscribers(key, others)
    assert (removed["removed"], removed["subscribers"]) == (2, 1)
    fanned = client.send(
        "welcome", topic=key, channels=["inapp"], variables={"order_id": "A-4"}, exclude=[]
    )
    assert fanned["status"] == "accepted"
    assert client.get_topic(key)["name"] == "Order watchers"

    client.delete_topic(key)
    with pytest.raises(NotFoundError):
        client.get_topic(key)


def test_cancel_a_scheduled_notification(client: NotifierClient, user: str) -> None:
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    accepted = client.send(
        "welcome", recipient=user, channels=["email"], send_at=later, variables={"order_id": "5"}
    )
    assert [d["status"] for d in accepted["deliveries"]] == ["scheduled"]

    cancelled = client.cancel_notification(accepted["id"])

    assert [d["status"] for d in cancelled["deliveries"]] == ["cancelled"]


def test_dead_letters_need_an_ops_key_and_replay(
    client: NotifierClient, ops: NotifierClient, user: str, service: Service
) -> None:
    # The SendGrid simulator rejects this recipient's mail for good: a dead letter at once.
    fault = {"kind": "status", "status": 400, "match": f"{user}@example.com"}
    httpx.post(f"{service.sendgrid_url}/_sim/faults", json=fault).raise_for_status()
    try:
        accepted = client.send(
            "welcome", recipient=user, channels=["email"], variables={"order_id": "A-6"}
        )
        wait_for(lambda: delivery_status(client, accepted["id"]) == "dead")
    finally:
        httpx.delete(f"{service.sendgrid_url}/_sim/faults").raise_for_status()

    with pytest.raises(PermissionDeniedError):
        client.list_dead_letters()
    letters = [d for d in ops.iter_dead_letters(channel="email", limit=1) if d["recipient"] == user]
    (letter,) = letters
    assert letter["notification"] == accepted["id"]
    assert letter["reason"] == "sendgrid 400"

    replayed = ops.replay_dead_letter(letter["id"])

    assert replayed["replayed_at"]
    wait_for(lambda: delivery_status(client, accepted["id"]) == "sent")
