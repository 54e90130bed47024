"""The chaos run's accounting (bench/accounting.py) on rows made by hand: a digested item is
delivered only through its digest's received delivery, a topic notification's deliveries are
checked against its subscribers, and a delivery received twice is a counted duplicate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.deliveries.models import Delivery, DeliveryStatus, Digest, FanOut, Notification
from bench.accounting import account
from bench.progress import unfinished, workflow_timeline
from tests.factories import (
    ApiClientFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    DigestFactory,
    NotificationFactory,
    RecipientFactory,
    SubscriptionFactory,
    TopicFactory,
)

pytestmark = [pytest.mark.django_db]


def received(*deliveries: Delivery, status: int = 202) -> dict[str, list[dict[str, Any]]]:
    """The email simulator's log: each delivery id accepted once per time it is listed."""
    return {"email": [{"key": str(d.id), "status": status} for d in deliveries]}


def closed_with_delivery(digest: Digest, status: str = DeliveryStatus.SENT) -> Delivery:
    """Close the window as the digest task does: its own notification and delivery."""
    own = DeliveryFactory(
        notification=NotificationFactory(client=digest.client, template=digest.template),
        recipient=digest.recipient,
        channel=digest.channel,
        status=status,
    )
    DeliveryEventFactory(delivery=own, detail=f"digest {digest.pk} of 1: accepted")
    digest.closed_at = timezone.now()
    digest.outcome = Digest.Outcome.SENT
    digest.item_count = digest.items.count()
    digest.delivery = own
    digest.save()
    return own


def items_of(digest: Digest) -> dict[str, int]:
    """The run's view of the digest's items: notification id -> one accepted delivery."""
    return {str(d.notification_id): 1 for d in digest.items.all()}


def test_a_digested_item_whose_window_never_closed_is_lost() -> None:
    digest = DigestFactory(items=2)

    result = account(items_of(digest), received())

    assert result.lost == 2
    assert result.digested == 0
    assert result.digests["open"] == 1
    assert "never closed" in result.lost_examples[0]


def test_a_digested_item_whose_digest_delivery_was_never_received_is_lost() -> None:
    # Given a closed window whose delivery the database calls sent, but no simulator received
    digest = DigestFactory(items=3)
    own = closed_with_delivery(digest)

    result = account(items_of(digest), received())

    assert result.lost == 3
    assert result.digest_deliveries["lost"] == 1
    assert str(own.id) in result.lost_examples[0]


def test_a_digested_item_whose_digest_delivery_was_received_is_accounted() -> None:
    digest = DigestFactory(items=3)
    own = closed_with_delivery(digest)

    result = account(items_of(digest), received(own))

    assert result.lost == 0
    assert result.digested == 3
    assert result.delivered == 0  # the items were not sent on their own
    assert result.digests == {"sent": 1}
    assert result.digest_deliveries["delivered"] == 1
    assert result.duplicated == 0


def test_a_digest_delivery_received_twice_is_a_counted_duplicate() -> None:
    digest = DigestFactory(items=2)
    own = closed_with_delivery(digest)

    result = account(items_of(digest), received(own, own))

    assert result.lost == 0
    assert result.digested == 2
    assert result.digest_deliveries["duplicated"] == 1
    assert result.duplicated == 1


def test_a_digested_item_also_sent_on_its_own_is_a_counted_duplicate() -> None:
    digest = DigestFactory(items=1)
    own = closed_with_delivery(digest)
    item = digest.items.get()

    result = account(items_of(digest), received(own, item))

    assert result.digested == 1
    assert result.duplicated == 1


def test_an_item_that_joined_a_window_after_its_close_is_lost() -> None:
    # Given a window sent with two items, and a third `digested` into it afterwards
    digest = DigestFactory(items=2)
    own = closed_with_delivery(digest)
    DeliveryFactory(
        notification=NotificationFactory(client=digest.client, template=digest.template),
        recipient=digest.recipient,
        status=DeliveryStatus.DIGESTED,
        digest=digest,
    )

    result = account(items_of(digest), received(own))

    # Then two went out in the digest and one is lost, named
    assert (result.digested, result.lost) == (2, 1)
    assert "closed with 2 items, not with it" in result.lost_examples[0]


def test_a_window_with_fewer_digested_items_than_it_closed_with_is_a_loss() -> None:
    # Given a window that says it closed with three items, two of which are there
    digest = DigestFactory(items=2)
    own = closed_with_delivery(digest)
    Digest.objects.filter(pk=digest.pk).update(item_count=3)

    result = account(items_of(digest), received(own))

    assert result.lost == 1
    assert f"digest {digest.pk} closed with 3 items, 2 digested now" in result.lost_examples


def test_a_window_that_failed_to_close_accounts_its_items_as_dead_not_lost() -> None:
    # Given a window closed `failed`, its item dead with a dead letter
    digest = DigestFactory(items=1)
    item = digest.items.get()
    Delivery.objects.filter(pk=item.pk).update(status=DeliveryStatus.DEAD)
    DeadLetterFactory(delivery=item, reason="digest failed to close")
    Digest.objects.filter(pk=digest.pk).update(
        closed_at=timezone.now(), outcome=Digest.Outcome.FAILED, item_count=1
    )

    result = account(items_of(digest), received())

    assert (result.dead, result.lost) == (1, 0)
    assert result.dead_reasons == {"digest failed to close": 1}


def test_a_second_digest_delivery_for_one_window_is_a_counted_duplicate() -> None:
    # Given a window sent, and another digest delivery made for it (closed twice) that its
    # window does not name
    digest = DigestFactory(items=2)
    own = closed_with_delivery(digest)
    again = DeliveryFactory(
        notification=NotificationFactory(client=digest.client, template=digest.template),
        recipient=digest.recipient,
        status=DeliveryStatus.SENT,
    )
    DeliveryEventFactory(delivery=again, detail=f"digest {digest.pk} of 2: queued")

    result = account(items_of(digest), received(own, again))

    assert result.digested == 2
    assert result.duplicated == 1
    assert result.digest_deliveries["unreferenced"] == 1


def test_a_fallback_does_not_stand_in_for_a_missing_primary() -> None:
    # Given a notification accepted with two deliveries: one in the db, and a fallback
    primary = DeliveryFactory(status=DeliveryStatus.SENT)
    fallback = DeliveryFactory(
        notification=primary.notification, status=DeliveryStatus.SENT, is_fallback=True
    )

    result = account({str(primary.notification_id): 2}, received(primary, fallback))

    # Then the missing primary is lost, though the rows number two
    assert result.lost == 1
    assert f"1 deliveries of {primary.notification_id} accepted" in result.lost_examples[0]


def test_a_plain_delivery_received_twice_is_delivered_once_and_one_duplicate() -> None:
    delivery = DeliveryFactory(status=DeliveryStatus.SENT)

    result = account({str(delivery.notification_id): 1}, received(delivery, delivery))

    assert result.delivered == 1
    assert result.duplicated == 1
    assert result.lost == 0


def test_a_delivery_the_db_calls_sent_but_no_simulator_received_is_lost() -> None:
    delivery = DeliveryFactory(status=DeliveryStatus.SENT)

    result = account({str(delivery.notification_id): 1}, received())

    assert result.lost == 1
    assert str(delivery.id) in result.lost_examples[0]


def test_rows_missing_for_an_accepted_notification_are_lost() -> None:
    delivery = DeliveryFactory(status=DeliveryStatus.SENT)

    result = account({str(delivery.notification_id): 3}, received(delivery))

    assert result.delivered == 1
    assert result.lost == 2


def fan_out(
    subscribers: int, *, exclude: int = 1, channels: tuple[str, ...] = ("email",)
) -> tuple[Notification, list[Any]]:
    """A topic with `subscribers` followers, the first `exclude` of them excluded, and a
    finished fan-out to it with no deliveries yet. Returns the notification and followers."""
    client = ApiClientFactory()
    topic = TopicFactory(client=client)
    followers = [RecipientFactory(client=client) for _ in range(subscribers)]
    for recipient in followers:
        SubscriptionFactory(topic=topic, recipient=recipient)
    notification = NotificationFactory(client=client, channels=list(channels))
    expected = (subscribers - exclude) * len(channels)
    FanOut.objects.create(
        notification=notification,
        topic=topic,
        topic_key=topic.key,
        exclude=[r.external_id for r in followers[:exclude]],
        expected=expected,
        created=expected,
        finished_at=timezone.now(),
    )
    return notification, followers


def sent_to(notification: Notification, recipients: list[Any], channel: str = "email") -> list:
    return [
        DeliveryFactory(
            notification=notification, recipient=r, channel=channel, status=DeliveryStatus.SENT
        )
        for r in recipients
    ]


def test_a_fan_out_with_every_subscriber_reached_once_loses_nothing() -> None:
    notification, followers = fan_out(4)
    rows = sent_to(notification, followers[1:])

    result = account({str(notification.id): 3}, received(*rows), fan_outs={str(notification.id)})

    assert result.lost == 0
    assert result.delivered == 3
    [check] = result.fan_outs
    assert (check.expected, check.in_db, check.missing, check.unexpected) == (3, 3, 0, 0)


def test_a_fan_out_missing_a_subscriber_is_lost_and_names_them() -> None:
    notification, followers = fan_out(4)
    rows = sent_to(notification, followers[1:3])  # the last follower never got one

    result = account({str(notification.id): 3}, received(*rows), fan_outs={str(notification.id)})

    assert result.lost == 1
    assert result.fan_outs[0].missing == 1
    assert followers[3].external_id in result.lost_examples[0]


def test_a_fan_out_missing_one_channel_of_a_subscriber_is_lost() -> None:
    notification, followers = fan_out(3, channels=("email", "push"))
    rows = sent_to(notification, followers[1:]) + sent_to(notification, followers[1:2], "push")

    result = account(
        {str(notification.id): 4},
        {**received(*rows[:2]), "push": [{"key": str(rows[2].id), "status": 200}]},
        fan_outs={str(notification.id)},
    )

    assert result.lost == 1
    assert "no push delivery" in result.lost_examples[0]


def test_a_fan_out_delivery_to_the_excluded_recipient_is_unexpected() -> None:
    notification, followers = fan_out(3)
    rows = sent_to(notification, followers)  # the excluded actor got one too

    result = account({str(notification.id): 2}, received(*rows), fan_outs={str(notification.id)})

    assert result.unexpected == 1
    assert result.fan_outs[0].unexpected == 1
    assert result.lost == 0


def test_a_fan_out_delivery_received_twice_is_a_counted_duplicate() -> None:
    notification, followers = fan_out(3)
    rows = sent_to(notification, followers[1:])

    result = account(
        {str(notification.id): 2}, received(*rows, rows[0]), fan_outs={str(notification.id)}
    )

    assert result.duplicated == 1
    assert result.lost == 0


def test_unfinished_waits_for_open_windows_digest_deliveries_and_fan_outs() -> None:
    # Given an item in an open window: owed
    digest = DigestFactory(items=1)
    ids = list(items_of(digest))
    assert unfinished(ids) == 1

    # When its window closes with a delivery still queued: still owed
    own = closed_with_delivery(digest, status=DeliveryStatus.QUEUED)
    assert unfinished(ids) == 1

    # Then once that delivery is sent, nothing is
    Delivery.objects.filter(pk=own.pk).update(status=DeliveryStatus.SENT)
    assert unfinished(ids) == 0

    # And an unfinished fan-out owes what it has not created yet
    notification, _ = fan_out(4)
    FanOut.objects.filter(notification=notification).update(
        finished_at=None, created=1, updated_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert unfinished([str(notification.id)]) == 2


def test_the_timeline_shows_each_fan_out_and_the_digest_windows_closed_late() -> None:
    # Given a window closed 5 s after it was due, and a finished fan-out
    digest = DigestFactory(items=1)
    closed_with_delivery(digest)
    Digest.objects.filter(pk=digest.pk).update(closes_at=digest.closed_at - dt.timedelta(seconds=5))
    notification, _ = fan_out(3)
    start = notification.created_at.timestamp() - 10

    lines = workflow_timeline([*items_of(digest), str(notification.id)], start=start)

    assert any("1 digest windows" in line and "1 of them over 2 s late" in line for line in lines)
    assert any(line.startswith("t+ 10.0s  fan-out to topic-") for line in lines), lines
