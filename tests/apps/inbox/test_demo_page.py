"""The bell demo page: open under DEBUG, staff-only otherwise."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from apps.recipients.tokens import recipient_token_verify
from tests.factories import ApiClientFactory, RecipientFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def demo_recipient() -> object:
    return RecipientFactory(client=ApiClientFactory(name="demo"), external_id="demo-user")


def token_in(html: str) -> str:
    marker = ' token="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_anonymous_is_sent_to_admin_login_when_debug_is_off(demo_recipient: object) -> None:
    response = Client().get("/demo/bell")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/demo/bell"


def test_non_staff_user_is_403(demo_recipient: object) -> None:
    user = get_user_model().objects.create_user("someone", password="pw-123456789")
    client = Client()
    client.force_login(user)

    assert client.get("/demo/bell").status_code == 403
    assert client.post("/demo/bell/send").status_code == 403


def test_staff_gets_the_bell_with_a_token_for_the_demo_recipient(demo_recipient: object) -> None:
    staff = get_user_model().objects.create_user("ops", password="pw-123456789", is_staff=True)
    client = Client()
    client.force_login(staff)

    response = client.get("/demo/bell")

    assert response.status_code == 200
    assert recipient_token_verify(token_in(response.content.decode())) == demo_recipient


@override_settings(DEBUG=True)
def test_debug_serves_the_page_to_anyone(demo_recipient: object) -> None:
    response = Client().get("/demo/bell")

    assert response.status_code == 200
    assert 'id="notifier-bell"' in response.content.decode()


@override_settings(DEBUG=True)
def test_without_seeded_demo_recipient_the_page_is_404() -> None:
    response = Client().get("/demo/bell")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@override_settings(DEBUG=True)
def test_demo_send_answers_in_error_shape_without_the_demo_template(
    demo_recipient: object,
) -> None:
    response = Client().post("/demo/bell/send")

    assert response.status_code == 400
    assert response.json()["fields"] == {"template": ["unknown template 'welcome'"]}
