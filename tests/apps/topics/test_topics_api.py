"""Topics API: create, list, delete, subscribers (idempotent, paginated), per-client isolation."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.topics.models import Subscription, Topic
from tests.factories import ApiKeyFactory, RecipientFactory, SubscriptionFactory, TopicFactory

URL = "/api/v1/topics"


def assert_error(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert field in body["fields"], body
    return body


@pytest.fixture
def client_row(api_key: tuple[Any, str]) -> Any:
    return api_key[0].client


@pytest.fixture
def other_api() -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory.create_with_raw()[1]}")
    return api


@pytest.mark.django_db
def test_put_creates_then_updates_and_get_lists_with_counts(api: APIClient) -> None:
    created = api.put(f"{URL}/order-123-watchers", {"name": "Order 123"}, format="json")
    updated = api.put(f"{URL}/order-123-watchers", {"description": "Who follows it"}, format="json")
    listed = api.get(URL)

    assert created.status_code == 201, created.content
    assert created.json()["name"] == "Order 123"
    assert updated.status_code == 200
    assert updated.json()["name"] == "Order 123"  # fields not given keep their value
    assert updated.json()["description"] == "Who follows it"
    assert [(t["key"], t["subscribers"]) for t in listed.json()["results"]] == [
        ("order-123-watchers", 0)
    ]


@pytest.mark.django_db
def test_delete_removes_the_topic_and_its_subscriptions(api: APIClient, client_row: Any) -> None:
    sub = SubscriptionFactory(topic__client=client_row, topic__key="t1")

    deleted = api.delete(f"{URL}/t1")

    assert deleted.status_code == 204
    assert api.get(f"{URL}/t1").status_code == 404
    assert not Subscription.objects.filter(pk=sub.pk).exists()
    assert api.delete(f"{URL}/t1").status_code == 404


@pytest.mark.django_db
def test_a_client_sees_and_changes_only_its_own_topics(
    api: APIClient, other_api: APIClient, client_row: Any
) -> None:
    mine = TopicFactory(client=client_row, key="shared-key", name="mine")
    RecipientFactory(client=client_row, external_id="user-1")

    assert other_api.get(URL).json()["results"] == []
    assert other_api.get(f"{URL}/shared-key").status_code == 404
    assert other_api.get(f"{URL}/shared-key/subscribers").status_code == 404
    assert other_api.delete(f"{URL}/shared-key").status_code == 404
    posted = other_api.post(
        f"{URL}/shared-key/subscribers", {"recipients": ["user-1"]}, format="json"
    )
    assert posted.status_code == 404
    # The same key is another topic for another client: creating it leaves mine alone.
    assert other_api.put(f"{URL}/shared-key", {"name": "theirs"}, format="json").status_code == 201
    mine.refresh_from_db()
    assert mine.name == "mine"
    assert Topic.objects.filter(key="shared-key").count() == 2
    assert api.get(f"{URL}/shared-key").json()["name"] == "mine"


@pytest.mark.django_db
def test_another_clients_recipient_cannot_be_subscribed(api: APIClient, client_row: Any) -> None:
    TopicFactory(client=client_row, key="t1")
    RecipientFactory(external_id="stranger")  # another client's

    response = api.post(f"{URL}/t1/subscribers", {"recipients": ["stranger"]}, format="json")

    assert assert_error(response, 400, "recipients")["fields"]["recipients"] == [
        "unknown recipient 'stranger'"
    ]
    assert Subscription.objects.count() == 0


@pytest.mark.django_db
def test_subscribe_is_idempotent_and_unsubscribe_removes(api: APIClient, client_row: Any) -> None:
    TopicFactory(client=client_row, key="t1")
    for ext in ("a", "b", "c"):
        RecipientFactory(client=client_row, external_id=ext)

    first = api.post(f"{URL}/t1/subscribers", {"recipients": ["a", "b", "a"]}, format="json")
    again = api.post(f"{URL}/t1/subscribers", {"recipients": ["a", "b", "c"]}, format="json")
    removed = api.delete(f"{URL}/t1/subscribers", {"recipients": ["a", "zzz"]}, format="json")

    assert first.json() == {"topic": "t1", "added": 2, "subscribers": 2}
    assert again.json() == {"topic": "t1", "added": 1, "subscribers": 3}
    assert removed.json() == {"topic": "t1", "removed": 1, "subscribers": 2}
    assert sorted(Subscription.objects.values_list("recipient__external_id", flat=True)) == [
        "b",
        "c",
    ]


@pytest.mark.django_db
def test_unknown_recipient_is_400_and_nothing_is_subscribed(
    api: APIClient, client_row: Any
) -> None:
    TopicFactory(client=client_row, key="t1")
    RecipientFactory(client=client_row, external_id="a")

    response = api.post(f"{URL}/t1/subscribers", {"recipients": ["a", "ghost"]}, format="json")

    assert assert_error(response, 400, "recipients")["fields"]["recipients"] == [
        "unknown recipient 'ghost'"
    ]
    assert Subscription.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"recipients": [f"u{i}" for i in range(1001)]},
        {"recipients": []},
        {"recipients": "a"},
        {"recipients": [1]},
        {},
        ["a"],
    ],
)
def test_bad_subscriber_bodies_are_400_naming_recipients(
    api: APIClient, client_row: Any, body: Any
) -> None:
    TopicFactory(client=client_row, key="t1")

    response = api.post(f"{URL}/t1/subscribers", body, format="json")

    assert response.status_code == 400, response.content
    assert Subscription.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["-starts-with-dash", "has space", "x" * 101, "semi;colon"])
def test_invalid_topic_key_is_400_naming_key(api: APIClient, key: str) -> None:
    response = api.put(f"{URL}/{key}", {"name": "n"}, format="json")

    assert_error(response, 400, "key")
    assert Topic.objects.count() == 0


@pytest.mark.django_db
def test_bad_put_body_is_400_naming_the_field(api: APIClient) -> None:
    response = api.put(f"{URL}/t1", {"name": 5, "description": "x" * 2001}, format="json")

    body = assert_error(response, 400, "name")
    assert "description" in body["fields"]
    assert Topic.objects.count() == 0


@pytest.mark.django_db
def test_subscribers_are_listed_by_signed_cursor(api: APIClient, client_row: Any) -> None:
    topic = TopicFactory(client=client_row, key="t1")
    for ext in ("a", "b", "c"):
        SubscriptionFactory(topic=topic, recipient__client=client_row, recipient__external_id=ext)

    first = api.get(f"{URL}/t1/subscribers?limit=2").json()
    second = api.get(first["next"]).json()
    forged = api.get(f"{URL}/t1/subscribers?cursor=WyIxIl0.bad")

    assert [s["recipient"] for s in first["results"]] == ["a", "b"]
    assert [s["recipient"] for s in second["results"]] == ["c"]
    assert second["next"] is None
    assert_error(forged, 400, "cursor")


@pytest.mark.django_db
def test_a_recipient_shows_its_topics(api: APIClient, client_row: Any) -> None:
    recipient = RecipientFactory(client=client_row, external_id="user-1")
    for key in ("b-topic", "a-topic"):
        SubscriptionFactory(topic__client=client_row, topic__key=key, recipient=recipient)
    TopicFactory(client=client_row, key="not-followed")

    response = api.get("/api/v1/recipients/user-1")

    assert response.status_code == 200
    assert response.json()["topics"] == ["a-topic", "b-topic"]
    assert response.json()["topics_total"] == 2


@pytest.mark.django_db
def test_a_recipient_following_many_topics_lists_the_first_100(
    api: APIClient, client_row: Any
) -> None:
    recipient = RecipientFactory(client=client_row, external_id="user-1")
    for i in range(130):
        SubscriptionFactory(topic__client=client_row, topic__key=f"t-{i:03}", recipient=recipient)

    body = api.get("/api/v1/recipients/user-1").json()

    assert body["topics"] == [f"t-{i:03}" for i in range(100)]
    assert body["topics_total"] == 130


@pytest.mark.django_db
def test_erasing_a_recipient_unsubscribes_it(api: APIClient, client_row: Any) -> None:
    recipient = RecipientFactory(client=client_row, external_id="user-1")
    SubscriptionFactory(topic__client=client_row, recipient=recipient)

    assert api.delete("/api/v1/recipients/user-1").status_code == 204

    assert Subscription.objects.count() == 0


@pytest.mark.django_db
def test_a_key_with_a_trailing_newline_is_refused(api: APIClient, client_row: Any) -> None:
    response = api.put(f"{URL}/order-1%0A", {"name": "x"}, format="json")

    assert response.status_code in (400, 404), response.content
    assert not Topic.objects.filter(key__startswith="order-1").exists()


@pytest.mark.django_db
def test_the_topic_list_counts_subscribers_without_grouping_the_topics(
    api: APIClient, client_row: Any
) -> None:
    from apps.topics.selectors import topics_list

    topic = TopicFactory(client=client_row, key="counted")
    TopicFactory(client=client_row, key="empty")
    for i in range(3):
        SubscriptionFactory(
            topic=topic, recipient__client=client_row, recipient__external_id=f"s{i}"
        )

    rows = api.get(URL).json()["results"]
    sql = str(topics_list(client=client_row).query)

    assert {r["key"]: r["subscribers"] for r in rows} == {"counted": 3, "empty": 0}
    assert "LEFT OUTER JOIN" not in sql  # a correlated subquery per topic, not a join
