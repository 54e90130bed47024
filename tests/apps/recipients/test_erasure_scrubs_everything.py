"""GDPR erasure leaves none of the recipient's addresses, numbers or device tokens anywhere in
the database, while an address that was suppressed stays suppressed."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from apps.deliveries.models import Attempt, DeadLetter, Delivery, DeliveryEvent, DeliveryStatus
from apps.recipients.models import RecipientEvent, Suppression
from apps.recipients.selectors import recipient_is_suppressed, suppressions_among
from apps.recipients.services import preference_unsubscribe, recipient_erase, suppression_create
from tests.factories import (
    AttemptFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    DeviceFactory,
    InboxMessageFactory,
    NotificationFactory,
    RecipientFactory,
)
from tests.support.webhooks import (
    TWILIO_TOKEN,
    SendGridSigner,
    sendgrid_event,
    twilio_post,
)

pytestmark = [pytest.mark.django_db]

EMAIL = "Carol.Smith@example.net"
PHONE = "+14155550123"
TOKEN = "fcm-dEvIcE-tOkEn:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
OLD_TOKEN = "fcm-removed-earlier:APA91bQQ"
BOUNCE = f"550 5.1.1 <{EMAIL.lower()}>: Recipient address rejected: User unknown"


def tables_containing(needle: str) -> dict[str, int]:
    """Every table of the database whose rows, as text, contain `needle` (case-insensitive)."""
    found: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*) FROM {quoted} AS r WHERE r::text ILIKE %s",  # noqa: S608 - table names from the catalogue
                [f"%{needle}%"],
            )
            (count,) = cursor.fetchone()
            if count:
                found[table] = count
    return found


@pytest.fixture
def webhooks(settings: Any) -> SendGridSigner:
    signer = SendGridSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = signer.public_key
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_STATUS_CALLBACK_URL = ""
    return signer


def test_erasure_leaves_no_address_number_or_token_in_any_table(
    api: APIClient, api_key: tuple[Any, str], webhooks: SendGridSigner
) -> None:
    client = api_key[0].client
    carol = RecipientFactory(
        client=client, external_id="carol", email=EMAIL, phone=PHONE, data={"email": EMAIL}
    )
    DeviceFactory(recipient=carol, token=TOKEN)
    # A bounce through the real webhook: the reason lands in Delivery.reason and the event.
    email = DeliveryFactory(
        notification__client=client,
        notification__variables={"reply_to": EMAIL},
        notification__response={"deliveries": [{"recipient": "carol", "reason": BOUNCE}]},
        recipient=carol,
        channel="email",
        status=DeliveryStatus.SENT,
    )
    bounced = webhooks.post(
        Client(), [sendgrid_event("bounce", str(email.id), EMAIL.lower(), reason=BOUNCE)]
    )
    assert bounced.status_code == 200
    # An SMS Twilio gave up on: the number is suppressed and echoed in attempt and dead letter.
    sms = DeliveryFactory(
        notification__client=client,
        recipient=carol,
        channel="sms",
        status=DeliveryStatus.SENT,
        provider_message_id="SM1",
    )
    callback = twilio_post(
        Client(),
        {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30005", "To": PHONE},
        delivery_id=str(sms.id),
    )
    assert callback.status_code == 204
    AttemptFactory(
        delivery=sms,
        provider="twilio",
        outcome=Attempt.Outcome.PERMANENT,
        response_code=400,
        error=f"HTTP 400: The 'To' number {PHONE} is not a valid phone number.",
    )
    DeadLetterFactory(
        delivery=DeliveryFactory(
            notification__client=client, recipient=carol, channel="sms", status="dead"
        ),
        reason=f"twilio 21211: invalid 'To' {PHONE}",
        last_error=f"Unable to create record: The 'To' number {PHONE} is not valid",
    )
    # A push that went to two devices, one of them since removed; a bulk notification that
    # names Carol's address among others' (it is shared: only her data goes).
    push = DeliveryFactory(
        notification__client=client,
        recipient=carol,
        channel="push",
        status=DeliveryStatus.SENT,
        reason=f"token {OLD_TOKEN} unregistered",
        push_accepted={TOKEN: "projects/p/messages/1", OLD_TOKEN: "projects/p/messages/2"},
    )
    DeliveryEventFactory(delivery=push, status="sent", detail=f"sent to {TOKEN}, {OLD_TOKEN}")
    bulk = NotificationFactory(
        client=client,
        recipient_count=2,
        variables={"cc": [EMAIL, "dave@example.org"], "note": f"call {PHONE}"},
    )
    dave = RecipientFactory(client=client, external_id="dave", email="dave@example.org")
    DeliveryFactory(notification=bulk, recipient=carol, reason=f"suppressed {EMAIL}")
    DeliveryFactory(notification=bulk, recipient=dave)
    InboxMessageFactory(recipient=carol, body=f"Your login is {EMAIL}", data={"phone": PHONE})
    # The setup put the data where the audit found it.
    assert EMAIL.lower() in Delivery.objects.get(pk=email.pk).reason
    assert DeliveryEvent.objects.filter(delivery=email, detail__icontains=EMAIL).exists()
    assert Suppression.objects.filter(address=EMAIL.lower()).exists()
    assert Suppression.objects.filter(address=PHONE).exists()
    # A provider that echoes the number without its `+`.
    DeliveryEventFactory(delivery=sms, status="failed", detail=f"To {PHONE[1:]} unreachable")
    for needle in (EMAIL, PHONE, PHONE[1:], TOKEN, OLD_TOKEN):
        assert tables_containing(needle), needle

    response = api.delete("/api/v1/recipients/carol")

    assert response.status_code == 204
    for needle in (EMAIL, PHONE, PHONE[1:], TOKEN, OLD_TOKEN):
        assert tables_containing(needle) == {}, needle
    # What is not Carol's stays.
    bulk.refresh_from_db()
    assert "dave@example.org" in bulk.variables["cc"]
    assert Delivery.objects.filter(recipient=dave).count() == 1
    # History stays countable.
    assert Delivery.objects.filter(recipient=carol).count() == 5
    assert DeadLetter.objects.filter(delivery__recipient=carol).count() == 1


def test_an_erased_recipients_suppressed_address_stays_suppressed(
    api: APIClient, api_key: tuple[Any, str]
) -> None:
    client = api_key[0].client
    RecipientFactory(client=client, external_id="carol", email=EMAIL, phone=PHONE)
    suppression_create(client=client, channel="email", address=EMAIL, reason="bounce")
    suppression_create(client=client, channel="sms", address=PHONE, reason="unsubscribed (STOP)")

    assert api.delete("/api/v1/recipients/carol").status_code == 204

    assert tables_containing(EMAIL) == {}
    assert tables_containing(PHONE) == {}
    # The same person signs up again under a new id: still not to be sent to.
    again = RecipientFactory(client=client, external_id="carol-2", email=EMAIL, phone=PHONE)
    assert recipient_is_suppressed(recipient=again, channel="email") is True
    assert recipient_is_suppressed(recipient=again, channel="sms") is True
    assert suppressions_among(
        client_id=client.pk, recipients=[again], channels=["email", "sms"]
    ) == {("email", EMAIL.lower()), ("sms", PHONE)}
    # A new bounce for it does not add a second row, and other clients are not affected.
    added = suppression_create(client=client, channel="email", address=EMAIL, reason="bounce")
    assert added is False
    assert Suppression.objects.filter(client=client, channel="email").count() == 1
    stranger = RecipientFactory(email=EMAIL)
    assert recipient_is_suppressed(recipient=stranger, channel="email") is False


def test_erasure_deletes_the_recipients_own_timeline() -> None:
    recipient = RecipientFactory()
    other = RecipientFactory(client=recipient.client)
    for who in (recipient, other):
        preference_unsubscribe(recipient=who, category="news", channel="email", source="link")

    recipient_erase(recipient=recipient)

    assert not RecipientEvent.objects.filter(recipient=recipient).exists()
    assert RecipientEvent.objects.filter(recipient=other).count() == 1
