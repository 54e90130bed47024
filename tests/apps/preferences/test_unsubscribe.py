"""One-click unsubscribe (RFC 8058): the headers on a delivery's email, and /u/{token}."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.test import Client

from apps.deliveries.compose import delivery_message
from apps.preferences.tokens import (
    list_unsubscribe_headers,
    preferences_url,
    unsubscribe_token,
    unsubscribe_url,
)
from apps.recipients.models import Preference, Recipient, RecipientEvent
from tests.factories import DeliveryFactory, NotificationFactory, RecipientFactory, TemplateFactory

pytestmark = pytest.mark.django_db

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _path(url: str) -> str:
    return url.removeprefix("https://notify.example.com")


@pytest.fixture(autouse=True)
def public_base(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = "https://notify.example.com"
    settings.UNSUBSCRIBE_MAILTO = ""


def test_a_non_critical_email_carries_the_one_click_headers(settings: Any) -> None:
    settings.UNSUBSCRIBE_MAILTO = "leave@notify.example.com"
    delivery = DeliveryFactory(channel="email")

    message = delivery_message(delivery=delivery)

    token = unsubscribe_token(recipient=delivery.recipient, category="orders", channel="email")
    assert message.headers == {
        "List-Unsubscribe": f"<https://notify.example.com/u/{token}>, "
        f"<mailto:leave@notify.example.com?subject={token.replace(':', '%3A')}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@pytest.mark.parametrize(
    ("channel", "category", "priority"),
    [
        ("email", "orders", "critical"),  # a critical send
        ("email", "security", "normal"),  # a category in CRITICAL_CATEGORIES
        ("sms", "orders", "normal"),  # not an email
    ],
)
def test_critical_and_non_email_messages_carry_no_unsubscribe_header(
    channel: str, category: str, priority: str
) -> None:
    notification = NotificationFactory(category=category, priority=priority, channels=[channel])
    delivery = DeliveryFactory(notification=notification, channel=channel)

    assert delivery_message(delivery=delivery).headers == {}


def test_templates_get_the_links_of_their_delivery() -> None:
    variants = [
        {
            "channel": "email",
            "locale": "en",
            "subject": "News",
            "body": "Leave: {{ unsubscribe_url }} Settings: {{ preferences_url }}",
        }
    ]
    template = TemplateFactory(variants=variants, category="news")
    notification = NotificationFactory(client=template.client, template=template, category="news")
    delivery = DeliveryFactory(notification=notification)

    message = delivery_message(delivery=delivery)

    leave = unsubscribe_url(recipient=delivery.recipient, category="news", channel="email")
    settings_link = preferences_url(recipient=delivery.recipient)
    assert message.body == f"Leave: {leave} Settings: {settings_link}"


def test_the_token_names_the_recipient_by_its_public_id_only() -> None:
    recipient = RecipientFactory(external_id="customer-4711")

    token = unsubscribe_token(recipient=recipient, category="news", channel="email")

    payload = json.loads(base64.urlsafe_b64decode(token.split(":")[0] + "=="))
    assert payload == {"r": recipient.public_id.hex, "c": "news", "ch": "email"}
    assert "customer-4711" not in token


def test_one_click_post_unsubscribes_at_once_and_idempotently() -> None:
    recipient = RecipientFactory()
    Preference.objects.create(recipient=recipient, categories={"news": {"sms": False}})
    url = unsubscribe_url(recipient=recipient, category="news", channel="email")
    client = Client(enforce_csrf_checks=True)  # a mail provider sends no cookie, no CSRF token

    first = client.post(_path(url), ONE_CLICK)
    second = client.post(_path(url), ONE_CLICK)

    assert (first.status_code, second.status_code) == (200, 200)
    assert "Location" not in first.headers
    pref = Preference.objects.get(recipient=recipient)
    assert pref.categories == {"news": {"sms": False, "email": False}}
    (event,) = RecipientEvent.objects.filter(recipient=recipient)
    assert (event.kind, event.category, event.channel, event.source) == (
        "unsubscribed",
        "news",
        "email",
        "one-click",
    )


def test_get_shows_a_confirm_form_and_the_preference_link_and_changes_nothing() -> None:
    recipient = RecipientFactory()
    url = unsubscribe_url(recipient=recipient, category="news", channel="email")

    response = Client().get(_path(url))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<form method="post">' in page
    # The link (dated by the unsubscribe link, so compared by what it opens, not by its text:
    # its signature's timestamp is the unsubscribe token's second, not this one's)
    base = preferences_url(recipient=recipient).rsplit("/", 2)[0] + "/"
    (link,) = re.findall(re.escape(base) + r'[^"]+', page)
    centre = Client().get(_path(link))
    assert centre.status_code == 200
    assert recipient.external_id not in link
    assert 'name="version"' in centre.content.decode()
    assert not Preference.objects.filter(recipient=recipient).exists()
    assert not RecipientEvent.objects.exists()


def test_the_confirm_button_unsubscribes_too() -> None:
    recipient = RecipientFactory(locale="de-AT")
    url = unsubscribe_url(recipient=recipient, category="news", channel="email")

    response = Client(enforce_csrf_checks=True).post(_path(url))

    assert response.status_code == 200
    assert "Sie haben abbestellt" in response.content.decode()  # the recipient's language
    assert Preference.objects.get(recipient=recipient).categories == {"news": {"email": False}}
    assert RecipientEvent.objects.get(recipient=recipient).source == "link"


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 404),  # signature
        (lambda t: t.replace(t.split(":")[0], t.split(":")[0][::-1]), 404),  # payload
        (lambda t: "not-a-token", 404),
        (lambda t: signing.dumps({"r": "x", "c": "news", "ch": "email"}), 404),  # another salt
        (lambda t: "%00" + t, 400),  # a NUL in the path: refused before any view
    ],
)
def test_a_tampered_or_foreign_token_is_a_4xx_and_changes_nothing(
    mangle: object, status: int
) -> None:
    recipient = RecipientFactory()
    token = unsubscribe_token(recipient=recipient, category="news", channel="email")

    bad = mangle(token)  # type: ignore[operator]
    got = Client().get(f"/u/{bad}")
    posted = Client().post(f"/u/{bad}", ONE_CLICK)

    assert (got.status_code, posted.status_code) == (status, status)
    assert not Preference.objects.exists()


def test_a_preference_link_is_no_unsubscribe_link() -> None:
    recipient = RecipientFactory()
    token = preferences_url(recipient=recipient).rsplit("/", 1)[1]

    assert Client().post(f"/u/{token}", ONE_CLICK).status_code == 404


def test_links_do_not_expire_unless_a_max_age_is_set(settings: Any) -> None:
    recipient = RecipientFactory()
    url = _path(unsubscribe_url(recipient=recipient, category="news", channel="email"))

    settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = 0
    assert Client().get(url).status_code == 200
    settings.UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = -1  # anything older than "now" is too old
    assert Client().get(url).status_code == 404


def test_a_critical_category_cannot_be_left_by_link() -> None:
    recipient = RecipientFactory()
    url = unsubscribe_url(recipient=recipient, category="security", channel="email")

    response = Client().post(_path(url), ONE_CLICK)

    assert response.status_code == 400
    assert not Preference.objects.filter(recipient=recipient).exists()


def test_the_header_on_an_email_and_its_link_agree_on_what_may_be_left() -> None:
    # `orders` holds a critical-by-default template (pay-failed) beside a normal one (shipped):
    # the category is not in CRITICAL_CATEGORIES, so shipped's header must work when used.
    recipient = RecipientFactory()
    TemplateFactory(client=recipient.client, category="orders", default_priority="critical")
    shipped = TemplateFactory(client=recipient.client, category="orders")
    notification = NotificationFactory(
        client=recipient.client, template=shipped, category="orders", priority="normal"
    )
    delivery = DeliveryFactory(notification=notification, recipient=recipient, channel="email")

    header = delivery_message(delivery=delivery).headers["List-Unsubscribe"]
    response = Client().post(_path(header.strip("<>")), ONE_CLICK)

    assert response.status_code == 200
    assert Preference.objects.get(recipient=recipient).categories == {"orders": {"email": False}}


def test_an_erased_recipients_link_is_a_404() -> None:
    recipient = RecipientFactory()
    url = _path(unsubscribe_url(recipient=recipient, category="news", channel="email"))
    Recipient.objects.filter(pk=recipient.pk).update(erased_at="2026-01-01T00:00:00Z")

    assert Client().post(url, ONE_CLICK).status_code == 404


def test_the_unsubscribe_shows_in_the_recipients_timeline_in_the_admin() -> None:
    recipient = RecipientFactory()
    url = unsubscribe_url(recipient=recipient, category="news", channel="email")
    Client().post(_path(url), ONE_CLICK)
    staff = Client()
    staff.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-long-enough"))

    page = staff.get(f"/admin/recipients/recipient/{recipient.pk}/change/").content.decode()

    assert "Timeline" in page
    assert "unsubscribed" in page
    assert "one-click" in page


def test_headers_helper_without_mailto_names_the_link_only() -> None:
    recipient = RecipientFactory()

    headers = list_unsubscribe_headers(recipient=recipient, category="news", channel="email")

    assert headers["List-Unsubscribe"] == (
        f"<{unsubscribe_url(recipient=recipient, category='news', channel='email')}>"
    )


def test_get_of_a_critical_categorys_link_shows_the_locked_page() -> None:
    recipient = RecipientFactory()
    url = unsubscribe_url(recipient=recipient, category="security", channel="email")

    response = Client().get(_path(url))

    assert response.status_code == 400
    page = response.content.decode()
    assert '<form method="post">' not in page  # no button that could only fail
    assert not Preference.objects.filter(recipient=recipient).exists()
