"""POST /api/v1/topics/{key}/subscribers with inline recipients: ids and objects mixed, each object
created or updated in the same transaction as the subscriptions (validated as PUT /recipients,
one upsert taking the row locks in external id order), idempotent, per client; any bad object
or unknown id is a 400 and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.recipients.models import Recipient
from apps.topics.models import Subscription
from tests.factories import ApiKeyFactory, RecipientFactory, TopicFactory
from tests.support.concurrency import post_together

URL = "/api/v1/topics/t1/subscribers"


@pytest.fixture
def client_row(api_key: tuple[Any, str]) -> Any:
    client = api_key[0].client
    TopicFactory(client=client, key="t1")
    return client


def subscribed() -> list[str]:
    return sorted(Subscription.objects.values_list("recipient__external_id", flat=True))


@pytest.mark.django_db
def test_ids_and_inline_objects_mixed_subscribe_all_creating_and_updating_recipients(
    api: APIClient, client_row: Any
) -> None:
    RecipientFactory(client=client_row, external_id="known", name="Old", email="old@example.com")
    body = {
        "recipients": [
            "known",
            {"id": "new-1", "email": "ana@example.com", "locale": "pt-BR", "name": "Ana"},
            {"id": "known", "name": "Renamed"},
            {"id": "new-2"},
        ]
    }

    response = api.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"topic": "t1", "added": 3, "subscribers": 3}
    assert subscribed() == ["known", "new-1", "new-2"]
    known = Recipient.objects.get(client=client_row, external_id="known")
    assert (known.name, known.email) == ("Renamed", "old@example.com")  # fields not given kept
    new = Recipient.objects.get(client=client_row, external_id="new-1")
    assert (new.email, new.locale, new.name) == ("ana@example.com", "pt-BR", "Ana")
    assert Recipient.objects.filter(client=client_row, external_id="new-2").exists()


@pytest.mark.django_db
def test_the_same_body_again_adds_nothing_and_creates_nothing(
    api: APIClient, client_row: Any
) -> None:
    body = {"recipients": [{"id": "a", "email": "a@example.com"}, {"id": "b"}]}

    first = api.post(URL, body, format="json")
    again = api.post(URL, body, format="json")

    assert first.json() == {"topic": "t1", "added": 2, "subscribers": 2}
    assert again.json() == {"topic": "t1", "added": 0, "subscribers": 2}
    assert Recipient.objects.filter(client=client_row, external_id__in=["a", "b"]).count() == 2
    assert Subscription.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ref", "field"),
    [
        ({"id": "x", "email": "not-an-email"}, "recipients[1].email"),
        ({"id": "x", "phone": "12"}, "recipients[1].phone"),
        ({"id": "x", "timezone": "Mars/Olympus"}, "recipients[1].timezone"),
        ({"id": "x", "locale": "<script>"}, "recipients[1].locale"),
        ({"id": "x", "data": "not an object"}, "recipients[1].data"),
        ({"id": "x", "data": {"k": "nul\u0000"}}, "recipients"),  # the body's parser refuses
        ({"id": "x", "is_staff": True}, "recipients[1].is_staff"),
        ({"id": "x", "client": 1}, "recipients[1].client"),
        ({"email": "no-id@example.com"}, "recipients[1].id"),
        ({"id": "x" * 201}, "recipients[1].id"),
        ({"id": "bell\u0007"}, "recipients[1].id"),
        ({"id": 7}, "recipients[1].id"),
        ({"id": "a/b"}, "recipients[1].id"),  # could not be addressed at /recipients/{id}
        ({"id": "."}, "recipients[1].id"),
        ({"id": "x", "name": ["a"]}, "recipients[1].name"),
        (["x"], "recipients[1]"),
    ],
)
def test_a_hostile_object_is_a_400_naming_it_and_nothing_is_written(
    api: APIClient, client_row: Any, ref: Any, field: str
) -> None:
    body = {"recipients": [{"id": "fine", "name": "F"}, ref]}

    response = api.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"code", "message", "fields"}
    assert field in response.json()["fields"], response.json()
    assert not Recipient.objects.filter(client=client_row).exists()
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_one_id_as_two_different_objects_is_a_400(api: APIClient, client_row: Any) -> None:
    body = {"recipients": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}

    response = api.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert "recipients[1].id" in response.json()["fields"]
    assert not Recipient.objects.filter(client=client_row).exists()


@pytest.mark.django_db
def test_an_unknown_plain_id_beside_an_inline_object_writes_nothing(
    api: APIClient, client_row: Any
) -> None:
    body = {"recipients": [{"id": "inline", "email": "i@example.com"}, "ghost"]}

    response = api.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["fields"]["recipients"] == ["unknown recipient 'ghost'"]
    assert not Recipient.objects.filter(client=client_row).exists()  # the upsert rolled back
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_an_inline_object_is_the_callers_own_recipient_never_another_clients(
    api: APIClient, client_row: Any
) -> None:
    # Given another client's recipient with the same external id, and its own topic t1
    theirs = RecipientFactory(external_id="shared", email="theirs@example.com", name="Theirs")
    TopicFactory(client=theirs.client, key="t1")

    # When this client subscribes "shared" inline with other fields
    body = {"recipients": [{"id": "shared", "email": "ours@example.com"}]}
    response = api.post(URL, body, format="json")

    # Then this client got its own recipient; the other's is untouched and subscribes nothing
    assert response.status_code == 200, response.content
    ours = Recipient.objects.get(client=client_row, external_id="shared")
    assert ours.pk != theirs.pk
    assert ours.email == "ours@example.com"
    theirs.refresh_from_db()
    assert (theirs.email, theirs.name) == ("theirs@example.com", "Theirs")
    assert list(Subscription.objects.values_list("recipient_id", "topic__client_id")) == [
        (ours.pk, client_row.pk)
    ]
    # And a third client has no topic t1: 404, nothing written
    other = ApiKeyFactory.create_with_raw()[1]
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert stranger.post(URL, body, format="json").status_code == 404
    assert Recipient.objects.filter(external_id="shared").count() == 2


@pytest.mark.django_db(transaction=True)
def test_opposite_orders_of_the_same_inline_objects_wait_for_each_other_not_deadlock(
    api_key: tuple[Any, str], client_row: Any
) -> None:
    for round_no in range(3):
        # Half of them exist after the first round (updated), half are new each round; two
        # distinct sets of fields (two statements after the locking one).
        refs = [
            {
                "id": f"r{i}" if i % 2 else f"r{i}-{round_no}",
                **({"name": "N"} if i % 4 < 2 else {"email": f"r{i}@example.com"}),
            }
            for i in range(40)
        ]
        bodies = [{"recipients": refs}, {"recipients": refs[::-1]}]

        statuses = [status for status, _, _ in post_together(api_key[1], URL, bodies)]

        assert statuses == [200, 200], f"round {round_no}: {statuses}"
    assert Recipient.objects.filter(client=client_row).count() == 20 + 3 * 20
    assert Subscription.objects.count() == 20 + 3 * 20
