"""Provider webhooks: signatures verified with the SDK helpers, statuses only move forward,
bounces and spam reports suppress, and a bad signature changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from apps.deliveries.models import Delivery, DeliveryEvent, DeliveryStatus
from apps.recipients.models import Suppression
from tests.factories import DeliveryFactory
from tests.support.webhooks import (
    SENDGRID_URL,
    TWILIO_TOKEN,
    TWILIO_URL,
    SendGridSigner,
    sendgrid_event,
    twilio_post,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def signer(settings: Any) -> SendGridSigner:
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    return signer


def sent_email() -> Delivery:
    return DeliveryFactory(channel="email", status=DeliveryStatus.SENT)


def state(delivery: Delivery) -> tuple[str, int, int]:
    delivery.refresh_from_db()
    return delivery.status, delivery.events.count(), Suppression.objects.count()


def test_delivered_open_click_move_forward(signer: SendGridSigner) -> None:
    delivery = sent_email()
    email = delivery.recipient.email
    for kind, expected in [("delivered", "delivered"), ("open", "opened"), ("click", "clicked")]:
        response = signer.post(Client(), [sendgrid_event(kind, str(delivery.id), email)])
        assert response.status_code == 200
        assert response.json() == {"received": 1, "applied": 1}
        delivery.refresh_from_db()
        assert delivery.status == expected
    assert [e.status for e in delivery.events.all()] == ["delivered", "opened", "clicked"]


def test_public_key_given_as_pem_is_accepted(signer: SendGridSigner, settings: Any) -> None:
    body = "\n".join(signer.public_key[i : i + 64] for i in range(0, len(signer.public_key), 64))
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = (
        f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"
    )
    delivery = sent_email()

    response = signer.post(
        Client(), [sendgrid_event("delivered", str(delivery.id), delivery.recipient.email)]
    )

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_late_delivered_after_opened_does_not_downgrade(signer: SendGridSigner) -> None:
    delivery = sent_email()
    email = delivery.recipient.email

    signer.post(Client(), [sendgrid_event("open", str(delivery.id), email)])
    response = signer.post(Client(), [sendgrid_event("delivered", str(delivery.id), email)])

    assert response.json()["applied"] == 0
    delivery.refresh_from_db()
    assert delivery.status == "opened"
    assert [e.status for e in delivery.events.all()] == ["opened"]


def test_bounce_fails_and_suppresses_the_address(signer: SendGridSigner) -> None:
    delivery = sent_email()
    email = delivery.recipient.email.upper()  # suppression compares case-insensitively

    event = sendgrid_event("bounce", str(delivery.id), email, reason="550 5.1.1 no such user")
    response = signer.post(Client(), [event])

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.reason == "sendgrid bounce: 550 5.1.1 no such user"
    (suppression,) = Suppression.objects.all()
    assert (suppression.channel, suppression.address, suppression.reason) == (
        "email",
        email.lower(),
        "bounce",
    )
    assert suppression.client_id == delivery.recipient.client_id


def test_spam_report_suppresses_without_changing_status(signer: SendGridSigner) -> None:
    delivery = sent_email()
    signer.post(Client(), [sendgrid_event("delivered", str(delivery.id), delivery.recipient.email)])

    signer.post(
        Client(), [sendgrid_event("spamreport", str(delivery.id), delivery.recipient.email)]
    )

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert Suppression.objects.get().reason == "spam report"


def test_dropped_fails_without_suppressing(signer: SendGridSigner) -> None:
    delivery = sent_email()

    signer.post(
        Client(), [sendgrid_event("dropped", str(delivery.id), "x@example.com", reason="Invalid")]
    )

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert Suppression.objects.count() == 0


def test_bounce_after_open_does_not_fail_the_delivery(signer: SendGridSigner) -> None:
    delivery = sent_email()
    signer.post(Client(), [sendgrid_event("open", str(delivery.id), delivery.recipient.email)])

    signer.post(Client(), [sendgrid_event("bounce", str(delivery.id), delivery.recipient.email)])

    delivery.refresh_from_db()
    assert delivery.status == "opened"


def test_event_found_by_provider_message_id_without_custom_arg(signer: SendGridSigner) -> None:
    delivery = DeliveryFactory(status=DeliveryStatus.SENT, provider_message_id="abc123")

    event = sendgrid_event("delivered", "", "x@example.com", sg_message_id="abc123.filter7")
    signer.post(Client(), [event])

    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_unknown_delivery_and_unknown_event_kind_are_accepted_and_ignored(
    signer: SendGridSigner,
) -> None:
    delivery = sent_email()
    events = [
        sendgrid_event("delivered", "not-a-uuid", "x@example.com", sg_message_id=""),
        sendgrid_event("processed", str(delivery.id), "x@example.com"),
    ]

    response = signer.post(Client(), events)

    assert response.json() == {"received": 2, "applied": 0}
    assert state(delivery) == ("sent", 0, 0)


@pytest.mark.parametrize(
    "tamper",
    ["no headers", "wrong key", "other payload", "garbage signature", "no public key"],
)
def test_bad_sendgrid_signature_is_403_and_changes_nothing(
    signer: SendGridSigner, settings: Any, tamper: str
) -> None:
    delivery = sent_email()
    payload = json.dumps([sendgrid_event("bounce", str(delivery.id), delivery.recipient.email)])
    headers = signer.headers(payload)
    if tamper == "no headers":
        headers = {}
    elif tamper == "wrong key":
        headers = SendGridSigner().headers(payload)
    elif tamper == "other payload":
        headers = signer.headers(payload.replace("bounce", "delivered"))
    elif tamper == "garbage signature":
        headers["HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE"] = "%%%not base64"
    else:
        settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""

    response = Client().post(SENDGRID_URL, payload, content_type="application/json", **headers)

    assert response.status_code == 403
    assert set(response.json()) == {"code", "message", "fields"}
    assert state(delivery) == ("sent", 0, 0)


@pytest.mark.parametrize("payload", ["{not json", '{"event": "open"}', "[1, 2]"])
def test_signed_but_malformed_body_is_400(signer: SendGridSigner, payload: str) -> None:
    response = Client().post(
        SENDGRID_URL, payload, content_type="application/json", **signer.headers(payload)
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("url", [SENDGRID_URL, TWILIO_URL])
def test_get_is_405_in_error_shape(url: str) -> None:
    response = Client().get(url)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_twilio_delivered(twilio_settings: None) -> None:
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SM1")
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": delivery.recipient.phone}

    response = twilio_post_configured(params, str(delivery.id))

    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_twilio_signature_checked_against_request_url_when_no_public_url(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_STATUS_CALLBACK_URL = ""
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SMx")

    response = twilio_post(
        Client(), {"MessageStatus": "delivered", "MessageSid": "SMx"}, delivery_id=str(delivery.id)
    )

    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_twilio_undelivered_landline_fails_and_suppresses_number(twilio_settings: None) -> None:
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT, provider_message_id="SM2")
    phone = delivery.recipient.phone
    params = {
        "MessageSid": "SM2",
        "MessageStatus": "undelivered",
        "ErrorCode": "30006",
        "To": phone,
    }

    twilio_post_configured(params, str(delivery.id))

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.reason == "twilio undelivered (error 30006)"
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address) == ("sms", phone)


@pytest.mark.parametrize("tamper", ["no signature", "wrong token", "changed field", "other url"])
def test_bad_twilio_signature_is_403_and_changes_nothing(
    twilio_settings: None, tamper: str
) -> None:
    delivery = DeliveryFactory(channel="sms", status=DeliveryStatus.SENT)
    params = {"MessageSid": "SM3", "MessageStatus": "undelivered", "ErrorCode": "21610"}
    url = f"{TWILIO_URL}?delivery_id={delivery.id}"
    public = f"https://notifier.example{url}"
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TWILIO_TOKEN).compute_signature(public, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature}
    if tamper == "no signature":
        headers = {}
    elif tamper == "wrong token":
        headers["HTTP_X_TWILIO_SIGNATURE"] = RequestValidator("other").compute_signature(
            public, params
        )
    elif tamper == "changed field":
        params = {**params, "MessageStatus": "delivered"}
    else:
        url = f"{TWILIO_URL}?delivery_id=00000000-0000-0000-0000-000000000000"

    response = Client().post(url, params, **headers)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert state(delivery) == ("sent", 0, 0)
    assert DeliveryEvent.objects.count() == 0


def twilio_post_configured(params: dict[str, str], delivery_id: str) -> Any:
    """Signed against the configured public URL, as Twilio would (it called that URL)."""
    from twilio.request_validator import RequestValidator

    query = f"?delivery_id={delivery_id}"
    public = f"https://notifier.example{TWILIO_URL}{query}"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(public, params)
    return Client().post(f"{TWILIO_URL}{query}", params, HTTP_X_TWILIO_SIGNATURE=signature)


# A minute past the 600 s limit either way: a slow machine's seconds between signing and
# checking must not bring a request signed "ahead" back inside it.
@pytest.mark.parametrize("age", [660, -660])
def test_sendgrid_events_signed_too_long_ago_or_ahead_are_403_and_change_nothing(
    signer: SendGridSigner, age: int
) -> None:
    # A genuine request, captured and replayed later (or signed by a clock far ahead).
    delivery = sent_email()
    email = delivery.recipient.email
    payload = json.dumps([sendgrid_event("bounce", str(delivery.id), email, reason="550")])
    headers = signer.headers(payload, timestamp=str(int(time.time()) - age))

    response = Client().post(SENDGRID_URL, payload, content_type="application/json", **headers)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert state(delivery) == ("sent", 0, 0)


def test_sendgrid_event_age_limit_is_configurable(signer: SendGridSigner, settings: Any) -> None:
    settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS = 60
    delivery = sent_email()
    event = [sendgrid_event("delivered", str(delivery.id), delivery.recipient.email)]
    payload = json.dumps(event)
    now = int(time.time())

    stale = Client().post(
        SENDGRID_URL,
        payload,
        content_type="application/json",
        **signer.headers(payload, timestamp=str(now - 90)),
    )
    fresh = Client().post(
        SENDGRID_URL,
        payload,
        content_type="application/json",
        **signer.headers(payload, timestamp=str(now - 30)),
    )

    assert (stale.status_code, fresh.status_code) == (403, 200)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert delivery.events.count() == 1
