"""The recipient admin: devices and preferences inline, the form's phone and time zone checks,
the erase action."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.recipients.models import Recipient
from tests.factories import DeviceFactory, PreferenceFactory, RecipientFactory


@pytest.mark.django_db
def test_recipient_page_shows_devices_and_preferences_inline(staff: Client) -> None:
    recipient = RecipientFactory(external_id="user-77")
    DeviceFactory(recipient=recipient, token="inline-device-token")
    PreferenceFactory(recipient=recipient, daily_limit=7)

    page = staff.get(reverse("admin:recipients_recipient_change", args=[recipient.pk]))

    html = page.content.decode()
    assert "inline-device-token" in html
    assert 'name="preference-0-daily_limit" value="7"' in html


@pytest.mark.django_db
def test_recipient_admin_rejects_bad_phone_and_timezone(staff: Client) -> None:
    recipient = RecipientFactory(external_id="user-78")
    url = reverse("admin:recipients_recipient_change", args=[recipient.pk])
    form = {
        "client": recipient.client_id,
        "external_id": "user-78",
        "email": "",
        "phone": "12345",
        "locale": "en",
        "timezone": "Mars/Base",
        "name": "",
        "data": "{}",
        "devices-TOTAL_FORMS": "0",
        "devices-INITIAL_FORMS": "0",
        "preference-TOTAL_FORMS": "0",
        "preference-INITIAL_FORMS": "0",
    }

    response = staff.post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"phone", "timezone"}
    recipient.refresh_from_db()
    assert recipient.timezone == "UTC"


@pytest.mark.django_db
def test_recipient_erase_action(staff: Client) -> None:
    recipient = RecipientFactory(external_id="user-79")
    DeviceFactory(recipient=recipient)

    response = staff.post(
        reverse("admin:recipients_recipient_changelist"),
        {"action": "erase", "_selected_action": [recipient.pk]},
    )

    assert response.status_code == 302
    recipient = Recipient.objects.get(pk=recipient.pk)
    assert recipient.erased_at is not None
    assert recipient.devices.count() == 0
