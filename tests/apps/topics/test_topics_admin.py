"""The subscriptions admin keeps a topic's followers within its client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.topics.models import Subscription
from tests.factories import RecipientFactory, TopicFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-123456"))
    return client


def test_a_subscription_across_clients_is_refused(staff: Client) -> None:
    topic = TopicFactory(key="t-1")
    stranger = RecipientFactory(external_id="someone-else")  # another client's recipient
    own = RecipientFactory(client=topic.client, external_id="own")
    assert stranger.client_id != topic.client_id

    refused = staff.post(
        "/admin/topics/subscription/add/", {"topic": topic.pk, "recipient": stranger.pk}
    )
    accepted = staff.post(
        "/admin/topics/subscription/add/", {"topic": topic.pk, "recipient": own.pk}
    )

    assert refused.status_code == 200  # the form again, with the error
    assert "another client" in refused.content.decode()
    assert accepted.status_code == 302
    assert list(Subscription.objects.values_list("recipient_id", flat=True)) == [own.pk]
