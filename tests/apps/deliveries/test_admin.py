"""The admin: pages render, searches work, and the replay action goes through the service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.deliveries.models import DeadLetter, Delivery, DeliveryStatus
from tests.factories import AttemptFactory, DeadLetterFactory, DeliveryEventFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def staff() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client()
    client.force_login(user)
    return client


def test_pages_render_with_search_and_filters(staff: Client) -> None:
    letter = DeadLetterFactory()
    delivery = letter.delivery
    DeliveryEventFactory(delivery=delivery)
    AttemptFactory(delivery=delivery)

    for url in [
        "/admin/deliveries/notification/?q=orders",
        f"/admin/deliveries/notification/{delivery.notification_id}/change/",
        "/admin/deliveries/delivery/?status__exact=dead&q=" + str(delivery.id),
        f"/admin/deliveries/delivery/{delivery.id}/change/",
        "/admin/deliveries/deadletter/?channel__exact=email&q=503",
        f"/admin/deliveries/deadletter/{letter.pk}/change/",
    ]:
        assert staff.get(url).status_code == 200, url


def test_replay_action_requeues_selected_and_records_the_admin(staff: Client) -> None:
    chosen, untouched = DeadLetterFactory(), DeadLetterFactory()

    response = staff.post(
        "/admin/deliveries/deadletter/",
        {"action": "replay", "_selected_action": [chosen.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Replayed 1 dead letter(s)." in response.content.decode()
    chosen.refresh_from_db()
    assert chosen.replayed_by == "admin:root"
    assert Delivery.objects.get(pk=chosen.delivery_id).status == DeliveryStatus.QUEUED
    assert DeadLetter.objects.get(pk=untouched.pk).replayed_at is None
    assert Delivery.objects.get(pk=untouched.delivery_id).status == DeliveryStatus.DEAD
