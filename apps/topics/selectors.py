"""Reads for topics: a client's topics, a topic's subscribers, a recipient's topics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.clients.models import ApiClient
from apps.recipients.models import Recipient
from apps.topics.models import Subscription, Topic


def topic_get(*, client: ApiClient, key: str) -> Topic | None:
    """The client's topic with this key (another client's topic of the same key is not seen)."""
    return Topic.objects.filter(client=client, key=key).first()


def topics_list(*, client: ApiClient) -> QuerySet[Topic]:
    """The client's topics, each with its subscriber count (`subscriber_count`)."""
    # A correlated subquery, not a JOIN and GROUP BY over every subscription of every topic:
    # each topic of the page is counted on its own (index on subscription.topic).
    counted = (
        Subscription.objects.filter(topic=OuterRef("pk"))
        .order_by()
        .values("topic")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Topic.objects.filter(client=client).annotate(
        subscriber_count=Coalesce(Subquery(counted), 0)
    )


def topic_subscriptions(*, topic: Topic) -> QuerySet[Subscription]:
    return Subscription.objects.filter(topic=topic).select_related("recipient")


def topic_subscribers(*, topic_id: int, exclude: Sequence[str] = ()) -> QuerySet[Recipient]:
    """The topic's reachable subscribers (not erased, not in `exclude`, external ids), in
    recipient id order: the order the fan-out walks them in."""
    rows = Recipient.objects.filter(topic_subscriptions__topic_id=topic_id, erased_at__isnull=True)
    if exclude:
        rows = rows.exclude(external_id__in=list(exclude))
    return rows.order_by("pk")


def subscriber_count(*, topic: Topic) -> int:
    return Subscription.objects.filter(topic=topic).count()


# A recipient's representation lists at most this many topic keys (it may follow thousands).
RECIPIENT_TOPICS_MAX = 100


def recipient_topic_keys(*, recipient: Recipient) -> list[str]:
    """The first RECIPIENT_TOPICS_MAX keys of the topics it follows, in key order."""
    rows = Subscription.objects.filter(recipient=recipient).order_by("topic__key")
    return list(rows.values_list("topic__key", flat=True)[:RECIPIENT_TOPICS_MAX])


def recipient_topics_described(*, recipient: Recipient, **_: Any) -> dict[str, Any]:
    """What this app adds to a recipient's API representation (recipient_describing)."""
    return {
        "topics": recipient_topic_keys(recipient=recipient),
        "topics_total": Subscription.objects.filter(recipient=recipient).count(),
    }
