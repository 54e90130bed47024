"""Twilio status reports reach only the delivery they were made for: the MessageSid must be
the delivery's, an SMS delivery's (never an email's), and a report by URL alone needs a send in
flight; suppression takes only that delivery's number."""

from __future__ import annotations

import pytest

from apps.deliveries.models import DeliveryStatus
from apps.recipients.models import Suppression
from tests.apps.deliveries.test_webhooks import state, twilio_post_configured
from tests.factories import DeliveryFactory

pytestmark = [pytest.mark.django_db]


def test_twilio_report_whose_message_sid_is_not_the_deliverys_changes_nothing(
    twilio_settings: None,
) -> None:
    # The URL names a delivery, but Twilio's MessageSid is not the one it returned for it.
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SMa")
    params = {
        "MessageSid": "SMother",
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "To": delivery.recipient.phone,
    }

    response = twilio_post_configured(params, str(delivery.id))

    assert response.status_code == 204
    assert state(delivery) == ("sent", 0, 0)


def test_twilio_report_for_one_delivery_cannot_be_aimed_at_another(
    twilio_settings: None,
) -> None:
    mine = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SMm")
    other = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SMo")
    params = {"MessageSid": "SMm", "MessageStatus": "failed", "To": mine.recipient.phone}

    response = twilio_post_configured(params, str(other.id))

    assert response.status_code == 204
    assert state(mine) == ("sent", 0, 0)
    assert state(other) == ("sent", 0, 0)


def test_twilio_report_never_changes_an_email_delivery_with_that_id(
    twilio_settings: None,
) -> None:
    email = DeliveryFactory(channel="email", status=DeliveryStatus.SENT, provider_message_id="SMe")
    params = {"MessageSid": "SMe", "MessageStatus": "failed"}

    twilio_post_configured(params, str(email.id))

    assert state(email) == ("sent", 0, 0)


def test_twilio_report_suppresses_only_the_deliverys_number(twilio_settings: None) -> None:
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SMs")
    params = {
        "MessageSid": "SMs",
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "To": "+15550009999",  # not this delivery's number
    }

    twilio_post_configured(params, str(delivery.id))

    delivery.refresh_from_db()
    assert delivery.status == "failed"  # the report is about this delivery
    assert not Suppression.objects.exists()  # but the number it names is not its number


def test_twilio_report_that_overtakes_the_workers_write_of_the_sid_applies(
    twilio_settings: None,
) -> None:
    # Twilio called back before the worker recorded its batch: the delivery is still `sending`
    # with no message id. The signed URL names it, and Twilio will not send the report again.
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENDING, provider_message_id="")
    phone = delivery.recipient.phone
    params = {"MessageSid": "SMearly", "MessageStatus": "undelivered", "ErrorCode": "30006"}

    response = twilio_post_configured({**params, "To": phone}, str(delivery.id))

    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert Suppression.objects.get().address == phone


@pytest.mark.parametrize(
    ("status", "sid"), [(DeliveryStatus.SENT, ""), (DeliveryStatus.SENDING, "SMknown")]
)
def test_twilio_report_by_url_alone_needs_a_send_in_flight_without_a_sid(
    twilio_settings: None, status: str, sid: str
) -> None:
    delivery = DeliveryFactory(channel="sms", status=status, provider_message_id=sid)
    params = {"MessageSid": "SMunknown", "MessageStatus": "failed", "To": delivery.recipient.phone}

    twilio_post_configured(params, str(delivery.id))

    delivery.refresh_from_db()
    assert delivery.status == status
    assert not Suppression.objects.exists()
