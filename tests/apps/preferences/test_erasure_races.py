"""A recipient erased while a preference link is being used: nothing is written for it, and no
recipient is created again under the external id it had."""

from __future__ import annotations

import pytest

from apps.preferences.selectors import preference_version
from apps.preferences.services import link_unsubscribe, preference_centre_save
from apps.recipients.models import Preference, Recipient, RecipientEvent
from apps.recipients.services import (
    RecipientGone,
    preference_unsubscribe,
    preference_update,
    recipient_erase,
)
from tests.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def _erased_behind_our_back(external_id: str) -> Recipient:
    """The recipient as the link's check loaded it, then erased before the save."""
    recipient = RecipientFactory(external_id=external_id, locale="en")
    recipient_erase(recipient=Recipient.objects.get(pk=recipient.pk))
    return recipient


def test_a_centre_save_after_an_erasure_creates_no_recipient_and_no_preferences() -> None:
    stale = _erased_behind_our_back("customer-4711")

    with pytest.raises(RecipientGone):
        preference_centre_save(
            recipient=stale, changes={"categories": {}}, profile={"locale": "de"}, version=""
        )

    assert not Recipient.objects.filter(external_id="customer-4711").exists()
    assert Recipient.objects.get(pk=stale.pk).locale == "en"
    assert not Preference.objects.exists()
    assert not RecipientEvent.objects.exists()


def test_a_locale_only_save_after_an_erasure_creates_no_recipient() -> None:
    stale = _erased_behind_our_back("customer-4712")

    with pytest.raises(RecipientGone):
        preference_centre_save(recipient=stale, changes={}, profile={"locale": "de"}, version="")

    assert not Recipient.objects.filter(external_id="customer-4712").exists()


def test_an_unsubscribe_link_used_after_an_erasure_writes_nothing() -> None:
    stale = _erased_behind_our_back("customer-4713")

    with pytest.raises(RecipientGone):
        link_unsubscribe(recipient=stale, category="news", channel="email", source="one-click")

    assert not Preference.objects.exists()
    assert not RecipientEvent.objects.exists()


@pytest.mark.parametrize(
    "write",
    [
        lambda r: preference_update(recipient=r, changes={"daily_limit": 3}),
        lambda r: preference_unsubscribe(recipient=r, category="news", channel="sms", source="x"),
    ],
    ids=["update", "unsubscribe"],
)
def test_preference_writes_refuse_an_erased_recipient(write: object) -> None:
    stale = _erased_behind_our_back("customer-4714")

    with pytest.raises(RecipientGone):
        write(stale)  # type: ignore[operator]

    assert not Preference.objects.exists()


def test_the_centre_saves_the_language_on_the_recipient_itself() -> None:
    recipient = RecipientFactory(external_id="customer-4715", locale="en")

    version = preference_version(recipient=recipient, pref=None)

    preference_centre_save(
        recipient=recipient, changes={}, profile={"locale": "de"}, version=version
    )

    assert Recipient.objects.get(pk=recipient.pk).locale == "de"
    assert Recipient.objects.filter(external_id="customer-4715").count() == 1
