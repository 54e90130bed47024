"""List cursors are signed: every list answers 400 naming `cursor` for one it did not produce
(hand-made, edited, or taken from another list), and follows its own `next` links to the end."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from apps.recipients.tokens import recipient_token_mint
from tests.factories import (
    ApiKeyFactory,
    DeadLetterFactory,
    DeliveryFactory,
    InboxMessageFactory,
    NotificationFactory,
    RecipientFactory,
    TemplateFactory,
    TemplateVersionFactory,
)

SERVICE_LISTS = [
    "/api/v1/notifications",
    "/api/v1/dead-letters",
    "/api/v1/templates",
    "/api/v1/templates/order_shipped/versions",
]
PAGE_PARAM = {
    "/api/v1/templates": "page_size",
    "/api/v1/templates/order_shipped/versions": "page_size",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GARBAGE = {
    "garbage": "garbage",
    "a DRF position that is a date": b64("p=2026-01-01"),
    "a DRF offset and reverse": b64("o=5&r=1&p=x"),
    "a keyset position of the right shape": base64.urlsafe_b64encode(
        json.dumps(["2026-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"]).encode()
    ).decode(),
    "a keyset position holding NUL": base64.urlsafe_b64encode(b'["\\u0000", "x"]').decode(),
    "empty": "",
    "a bad signature": "cD0x.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "very long": "x" * 20_000,
    "unicode": "ünïcødé",
}


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    key, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    recipient = RecipientFactory(client=key.client, external_id="user-1")
    template = TemplateFactory(client=key.client, key="order_shipped")
    for number in (2, 3):
        TemplateVersionFactory(template=template, number=number)
    for i in range(3):
        TemplateFactory(client=key.client, key=f"other_{i}")
    for _ in range(3):
        notification = NotificationFactory(client=key.client, template=template)
        delivery = DeliveryFactory(
            notification=notification, recipient=recipient, channel="sms", status="dead"
        )
        DeadLetterFactory(delivery=delivery)
    for _ in range(3):
        InboxMessageFactory(recipient=recipient)
    service = APIClient(raise_request_exception=False)
    service.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    inbox = APIClient(raise_request_exception=False)
    inbox.credentials(
        HTTP_AUTHORIZATION=f"Recipient {recipient_token_mint(recipient=recipient).token}"
    )
    return {"service": service, "inbox": inbox}


def cursor_of(next_url: str) -> str:
    return parse_qs(urlsplit(next_url).query)["cursor"][0]


def first_next(client: APIClient, url: str) -> str:
    response = client.get(url, {PAGE_PARAM.get(url, "limit"): 1})
    assert response.status_code == 200, response.content
    assert response.json()["next"], response.json()
    return str(response.json()["next"])


def assert_bad_cursor(response: Any) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == "invalid"
    assert list(body["fields"]) == ["cursor"]


@pytest.mark.parametrize("case", sorted(GARBAGE))
@pytest.mark.parametrize("url", SERVICE_LISTS)
def test_a_cursor_the_list_did_not_produce_is_a_400(
    world: dict[str, Any], url: str, case: str
) -> None:
    assert_bad_cursor(world["service"].get(url, {"cursor": GARBAGE[case]}))


@pytest.mark.parametrize("url", SERVICE_LISTS)
def test_an_edited_cursor_is_a_400(world: dict[str, Any], url: str) -> None:
    token = cursor_of(first_next(world["service"], url))
    value, _, signature = token.rpartition(".")
    edited = base64.urlsafe_b64encode(b"p=2026-01-01").decode().rstrip("=")

    assert_bad_cursor(world["service"].get(url, {"cursor": f"{edited}.{signature}"}))
    assert_bad_cursor(world["service"].get(url, {"cursor": value}))


@pytest.mark.parametrize("source", SERVICE_LISTS)
@pytest.mark.parametrize("target", SERVICE_LISTS)
def test_a_cursor_from_another_list_is_a_400(
    world: dict[str, Any], source: str, target: str
) -> None:
    token = cursor_of(first_next(world["service"], source))
    same = source == target

    response = world["service"].get(target, {"cursor": token})

    if same:
        assert response.status_code == 200
    else:
        assert_bad_cursor(response)


@pytest.mark.parametrize("url", SERVICE_LISTS)
def test_next_links_walk_the_whole_list_once(world: dict[str, Any], url: str) -> None:
    client = world["service"]
    everything = client.get(url).json()["results"]
    seen: list[Any] = []
    next_url: str | None = f"{url}?{PAGE_PARAM.get(url, 'limit')}=1"

    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.content
        seen += response.json()["results"]
        next_url = response.json()["next"]

    assert seen == everything
    assert len(seen) >= 1


@pytest.mark.parametrize("cursor", ["garbage", "-1", "0", "1e3", "9" * 30, ""])
def test_inbox_cursor_is_a_message_id_or_a_400(world: dict[str, Any], cursor: str) -> None:
    assert_bad_cursor(world["inbox"].get("/api/v1/inbox", {"cursor": cursor}))


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/notifications", "limit"),
        ("/api/v1/dead-letters", "limit"),
        ("/api/v1/templates", "page_size"),
        ("/api/v1/templates/order_shipped/versions", "page_size"),
    ],
)
@pytest.mark.parametrize("value", ["-1", "0", "1e3", "x", "", "9" * 30, "-" + "9" * 30])
def test_a_bad_page_size_is_a_400_or_capped(
    world: dict[str, Any], url: str, param: str, value: str
) -> None:
    response = world["service"].get(url, {param: value})

    if response.status_code == 200:  # DRF's cursor lists cap a huge size at their maximum
        assert value == "9" * 30
        return
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == [param]
