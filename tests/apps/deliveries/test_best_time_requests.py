"""`"send_at": "best_time"`, the request's rules: the send-time A/B test (`best_time_holdout`,
sticky on the recipient's external id, not beside a copy test on any channel it sends on,
fallback included), the 400s, topics and idempotency. The choice of the time:
test_best_time.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.deliveries.models import Delivery, Notification
from apps.recipients.models import Recipient
from notifier.experiments import assign
from tests.factories import TemplateVariantFactory
from tests.support.best_time import BODY, URL, post

BAD_SEND_AT = 'Must be a date-time (ISO 8601, e.g. 2030-01-01T09:00:00Z) or "best_time".'
ONE_TEST = "not with the labelled variants on {} (one A/B test at a time)"


@pytest.mark.django_db
def test_a_holdout_splits_1000_recipients_stickily(api: APIClient, demo: dict[str, Any]) -> None:
    client = demo["client"]
    Recipient.objects.bulk_create(
        [
            Recipient(client=client, external_id=f"h-{i}", email=f"h{i}@example.com")
            for i in range(1000)
        ]
    )
    ids = [f"h-{i}" for i in range(1000)]

    first = post(api, recipients=ids, send_at="best_time", best_time_holdout=30)
    again = post(
        api, recipients=ids, send_at="best_time", best_time_holdout=30, variables={"order_id": "2"}
    )

    def arms(notification_id: str) -> dict[str, str]:
        rows = Delivery.objects.filter(notification_id=notification_id)
        return dict(rows.values_list("recipient__external_id", "variant"))

    split = arms(first["id"])
    counts = Counter(split.values())
    assert set(counts) == {"immediate", "best_time"}
    assert abs(counts["immediate"] - 300) <= 45, counts  # within 4.5 points of 30%
    assert arms(again["id"]) == split  # sticky
    # The arm is the hash of the recipient's external id, as a copy test's label is
    test_key = "best_time:order_shipped"
    weights = [("immediate", 30), ("best_time", 70)]
    assert split == {ext: assign(test_key, ext, weights) for ext in ids}
    notification = Notification.objects.get(id=first["id"])
    assert (notification.send_time, notification.best_time_holdout) == ("best_time", 30)
    held = Delivery.objects.filter(notification_id=first["id"], variant="immediate").first()
    assert held is not None
    assert held.events.get().detail == "best time: held out (A/B test), sending now"


@pytest.mark.django_db
def test_a_holdout_is_refused_beside_a_copy_test(api: APIClient, demo: dict[str, Any]) -> None:
    version = demo["template"].versions.get()
    TemplateVariantFactory(version=version, channel="email", label="B", body="Other {{ order_id }}")

    response = api.post(
        URL,
        {**BODY, "recipient": "user-1", "send_at": "best_time", "best_time_holdout": 10},
        "json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"best_time_holdout": [ONE_TEST.format("email")]}
    assert Notification.objects.count() == 0
    # Without the holdout, or on another channel, it is accepted
    assert post(api, recipient="user-1", send_at="best_time")["send_at"] == "best_time"
    sms = post(api, recipient="user-1", send_at="best_time", best_time_holdout=10, channels=["sms"])
    assert sms["deliveries"][0]["variant"] in {"best_time", "immediate"}


@pytest.mark.django_db
def test_a_holdout_is_refused_beside_a_copy_test_on_a_fallback_channel(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given a copy test on sms, the fallback of a request on email
    version = demo["template"].versions.get()
    TemplateVariantFactory(version=version, channel="sms", label="B", body="Other {{ order_id }}")
    request = {
        **BODY,
        "recipient": "user-1",
        "send_at": "best_time",
        "best_time_holdout": 10,
        "fallback": ["sms"],
    }

    response = api.post(URL, request, "json")

    # Then: a fallback delivery would record both tests' arms in its one `variant`
    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {"best_time_holdout": [ONE_TEST.format("sms")]}
    assert Notification.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"send_at": "soon"}, "send_at", BAD_SEND_AT),
        ({"send_at": "Best_Time"}, "send_at", None),
        ({"send_at": 12}, "send_at", BAD_SEND_AT),
        ({"send_at": ["best_time"]}, "send_at", BAD_SEND_AT),
        ({"send_at": None}, "send_at", "This field may not be null."),
        ({"send_at": "best_time", "best_time_holdout": 101}, "best_time_holdout", None),
        ({"send_at": "best_time", "best_time_holdout": -1}, "best_time_holdout", None),
        (
            {"send_at": "best_time", "best_time_holdout": "10"},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        (
            {"send_at": "best_time", "best_time_holdout": 10.5},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        (
            {"send_at": "best_time", "best_time_holdout": True},
            "best_time_holdout",
            "Must be a JSON integer.",
        ),
        ({"best_time_holdout": 10}, "best_time_holdout", 'only with "send_at": "best_time"'),
        (
            {"send_at": "2030-01-01T00:00:00Z", "best_time_holdout": 10},
            "best_time_holdout",
            'only with "send_at": "best_time"',
        ),
        (
            {
                "send_at": "best_time",
                "escalation": [{"after": "1h", "channels": ["sms"], "unless": "read"}],
            },
            "send_at",
            '"best_time" cannot be combined with `escalation`',
        ),
    ],
)
def test_bad_send_time_shapes_are_a_clear_400(
    api: APIClient, demo: dict[str, Any], extra: dict[str, Any], field: str, message: str | None
) -> None:
    response = api.post(URL, {**BODY, "recipient": "user-1", **extra}, format="json")

    assert response.status_code == 400, response.content
    fields = response.json()["fields"]
    assert list(fields) == [field], fields
    if message is not None:
        assert fields[field] == [message]
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_best_time_for_a_topic_is_refused(api: APIClient, demo: dict[str, Any]) -> None:
    response = api.post(
        URL,
        {**BODY, "topic": "launches", "send_at": "best_time"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "send_at": ['"best_time" is not available for a topic: list the recipients']
    }


@pytest.mark.django_db
def test_the_idempotency_hash_tells_best_time_from_now(
    api: APIClient, demo: dict[str, Any]
) -> None:
    assert post(api, recipient="user-1", idempotency_key="k-1")["status"] == "accepted"

    response = api.post(
        URL,
        {**BODY, "recipient": "user-1", "idempotency_key": "k-1", "send_at": "best_time"},
        "json",
    )

    assert response.status_code == 409


@pytest.mark.django_db
def test_a_best_time_request_replayed_is_the_same_202_and_one_notification(
    api: APIClient, demo: dict[str, Any]
) -> None:
    request = {
        **BODY,
        "recipient": "user-1",
        "send_at": "best_time",
        "best_time_holdout": 40,
        "idempotency_key": "bt-1",
    }
    first = api.post(URL, request, format="json")
    assert first.status_code == 202, first.content

    again = api.post(URL, request, format="json")

    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert str(Notification.objects.get().id) == first.json()["id"]
    assert Delivery.objects.count() == 1
    # The same key with another holdout is another request: a conflict, nothing written
    other = api.post(URL, {**request, "best_time_holdout": 41}, format="json")
    assert other.status_code == 409
    assert other.json()["fields"] == {"idempotency_key": ["reused with a different body"]}
    assert (Notification.objects.count(), Delivery.objects.count()) == (1, 1)
