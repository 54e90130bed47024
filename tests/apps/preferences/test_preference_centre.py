"""The hosted preference centre: the same rules as PUT .../preferences, a plain HTML form."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.preferences.tokens import preferences_url
from apps.recipients.models import Preference, Recipient, RecipientEvent
from apps.recipients.services import preference_update
from tests.factories import PreferenceFactory, RecipientFactory, TemplateFactory

pytestmark = pytest.mark.django_db

LOCALE = Path(__file__).resolve().parents[3] / "apps" / "preferences" / "locale"


def _path(recipient: Recipient) -> str:
    return "/preferences/" + preferences_url(recipient=recipient).rsplit("/", 1)[1]


def _form(client: Client, path: str) -> dict[str, Any]:
    """The form's fields as a browser submits them unchanged (the boxes checked, not locked)."""
    page = client.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    checked = re.findall(r'name="receive" value="([^"]+)" aria-label="[^"]*" checked>', page)
    version = re.search(r'name="version" value="([^"]*)"', page)
    return {
        "csrfmiddlewaretoken": token[1],
        "version": version[1] if version else "",
        "receive": checked,
        "quiet_start": "",
        "quiet_end": "",
        "language": "en",
    }


@pytest.fixture
def recipient() -> Recipient:
    recipient = RecipientFactory()
    TemplateFactory(client=recipient.client, category="news")
    TemplateFactory(client=recipient.client, category="security")  # in CRITICAL_CATEGORIES
    # Critical by default, but its category is not critical: it stays the recipient's choice.
    TemplateFactory(client=recipient.client, category="orders", default_priority="critical")
    return recipient


def test_the_page_shows_categories_by_channel_with_critical_ones_locked(
    recipient: Recipient,
) -> None:
    page = Client().get(_path(recipient)).content.decode()

    assert 'name="receive" value="email/news" aria-label="news: Email" checked>' in page
    assert 'value="email/security" aria-label="security: Email" checked disabled>' in page
    assert 'name="receive" value="email/orders" aria-label="orders: Email" checked>' in page
    assert 'name="digest/news"' in page
    assert 'name="digest/orders"' in page
    assert 'name="digest/security"' not in page


def test_saving_an_opt_out_quiet_hours_and_a_digest_uses_the_apis_rules(
    recipient: Recipient,
) -> None:
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    form["receive"] = [v for v in form["receive"] if v != "email/news"]
    form.update({"quiet_start": "22:00", "quiet_end": "07:00", "digest/news": "daily@09:00"})

    response = client.post(_path(recipient), form)

    assert response.status_code == 302
    pref = Preference.objects.get(recipient=recipient)
    assert pref.categories == {"news": {"email": False}}
    assert (str(pref.quiet_start), str(pref.quiet_end)) == ("22:00:00", "07:00:00")
    assert pref.digest == {"news": "daily@09:00"}
    assert RecipientEvent.objects.get(recipient=recipient).kind == "preferences_updated"
    assert "Your preferences are saved." in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quiet_start", "22:00", "quiet_hours: end: Must be a time as HH:MM"),  # end empty
        ("digest/news", "weekly", "digest: news: 'hourly', 'daily@HH:MM'"),
        ("quiet_end", "25:00", "quiet_hours: end: Must be a time as HH:MM"),
    ],
)
def test_what_the_api_refuses_the_form_refuses_and_nothing_is_saved(
    recipient: Recipient, field: str, value: str, message: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    form["receive"] = []  # would opt out of everything, were it saved
    if field == "quiet_end":
        form["quiet_start"] = "22:00"
    form[field] = value

    response = client.post(_path(recipient), form)

    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Preference.objects.filter(recipient=recipient).exists()


def test_a_stored_category_name_the_rule_refuses_does_not_lock_the_page(
    recipient: Recipient,
) -> None:
    # An unsubscribe from a notification sent with a free-text category, before POST
    # /notifications checked the rule.
    PreferenceFactory(recipient=recipient, categories={"Weekly news": {"email": False}})
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    form["receive"] = [v for v in form["receive"] if v != "email/news"]

    response = client.post(_path(recipient), form)

    assert response.status_code == 302, response.content.decode()
    assert Preference.objects.get(recipient=recipient).categories == {
        "Weekly news": {"email": False},
        "news": {"email": False},
    }


def test_a_post_without_the_csrf_token_is_refused(recipient: Recipient) -> None:
    response = Client(enforce_csrf_checks=True).post(_path(recipient), {"receive": []})

    assert response.status_code == 403
    assert not Preference.objects.exists()


def test_locked_categories_keep_their_value_whatever_the_form_says(recipient: Recipient) -> None:
    PreferenceFactory(recipient=recipient, categories={"security": {"sms": False}})
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    form["receive"] = [*form["receive"], "sms/security"]  # a forged toggle of a locked row

    client.post(_path(recipient), form)

    assert Preference.objects.get(recipient=recipient).categories == {"security": {"sms": False}}


def test_the_page_follows_the_recipients_locale_and_the_language_choice_is_saved(
    recipient: Recipient,
) -> None:
    client = Client(enforce_csrf_checks=True)
    assert "Notification preferences" in client.get(_path(recipient)).content.decode()
    form = _form(client, _path(recipient))
    form["language"] = "de"

    client.post(_path(recipient), form)

    recipient.refresh_from_db()
    assert recipient.locale == "de"
    page = client.get(_path(recipient)).content.decode()
    assert '<html lang="de">' in page
    assert "Benachrichtigungseinstellungen" in page


def test_a_tampered_preference_link_is_a_404() -> None:
    recipient = RecipientFactory()

    assert Client().get(_path(recipient) + "x").status_code == 404


def test_the_api_hands_out_the_link(api: APIClient, api_key: tuple[Any, str]) -> None:
    recipient = RecipientFactory(client=api_key[0].client, external_id="u-1")

    response = api.post("/api/v1/recipients/u-1/preferences-link")

    assert response.status_code == 200
    assert response.json()["url"] == preferences_url(recipient=recipient)
    assert api.post("/api/v1/recipients/nobody/preferences-link").status_code == 404


def _po_entries(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    key: str | None = None
    current = ""
    field = ""
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("msgid "):
            field, current = "id", eval(line[6:])  # noqa: S307  # a quoted string literal
        elif line.startswith("msgstr "):
            key, field, current = current, "str", eval(line[7:])  # noqa: S307
        elif line.startswith('"'):
            current += eval(line)  # noqa: S307
        elif not line.strip() and field == "str" and key is not None:
            entries[key] = current
            field = ""
    return entries


def test_the_committed_mo_matches_the_po() -> None:
    po = LOCALE / "de" / "LC_MESSAGES" / "django.po"
    with (po.with_suffix(".mo")).open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)

    entries = {k: v for k, v in _po_entries(po).items() if k}
    assert entries  # the parser read something
    assert all(entries.values()), "every message is translated"
    for msgid, msgstr in entries.items():
        assert compiled.gettext(msgid) == msgstr, msgid
    assert len(compiled._catalog) - 1 == len(entries)  # type: ignore[attr-defined]  # + header


def test_a_locked_row_shows_what_is_stored_not_always_sent(recipient: Recipient) -> None:
    # Opted out of `security` by email through the API, which the pipeline honours.
    PreferenceFactory(recipient=recipient, categories={"security": {"email": False}})

    page = Client().get(_path(recipient)).content.decode()

    assert 'value="email/security" aria-label="security: Email" disabled>' in page
    assert 'value="sms/security" aria-label="security: SMS" checked disabled>' in page
    assert "Always sent" not in page
    assert "Cannot be changed here" in page


def test_a_post_from_a_page_older_than_the_stored_preferences_is_refused(
    recipient: Recipient,
) -> None:
    # Given the page open in one tab ...
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    # ... while the recipient opts out of news by SMS elsewhere (the API, another tab)
    preference_update(recipient=recipient, changes={"categories": {"news": {"sms": False}}})
    form["quiet_start"], form["quiet_end"] = "22:00", "07:00"

    # When the old page is saved
    response = client.post(_path(recipient), form)

    # Then nothing of it is saved, the SMS opt-out is kept, and the page says why
    assert response.status_code == 409
    assert "changed since this page was opened" in response.content.decode()
    pref = Preference.objects.get(recipient=recipient)
    assert pref.categories == {"news": {"sms": False}}
    assert pref.quiet_start is None
    assert not RecipientEvent.objects.filter(recipient=recipient).exists()
    # and the page now shows the stored state, so saving it again works
    page = response.content.decode()
    assert 'value="sms/news" aria-label="news: SMS">' in page
    again = _form(client, _path(recipient))
    assert client.post(_path(recipient), again).status_code == 302


def test_errors_are_in_the_pages_language(recipient: Recipient) -> None:
    recipient.locale = "de"
    recipient.save()
    client = Client(enforce_csrf_checks=True)
    form = _form(client, _path(recipient))
    form["language"] = "x" * 21  # longer than a locale may be

    response = client.post(_path(recipient), form)

    assert response.status_code == 400
    page = response.content.decode()
    assert "Stelle sicher, dass dieses Feld nicht mehr als 20 Zeichen lang ist." in page
    assert "Ensure this field" not in page
