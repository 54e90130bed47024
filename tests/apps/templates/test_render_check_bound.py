"""The API's render check skips the render of plain parts that provably fit
(notifier/render_bound.py, through `render_check`): the same answer as rendering, for every
input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

import notifier.rendering as rendering
from apps.clients.models import ApiKey
from apps.deliveries.models import Notification
from tests.factories import RecipientFactory

TEMPLATES = "/api/v1/templates"
NOTIFICATIONS = "/api/v1/notifications"
PLAIN_EMAIL = {
    "channel": "email",
    "subject": "Order {{ id }}",
    "body": "Hi {{ recipient.name }}, {{ id }}",
    "html": "<p>{{ id }}</p>",
}


@pytest.fixture
def recipient(api_key: tuple[ApiKey, str]) -> Any:
    return RecipientFactory(client=api_key[0].client, external_id="user-1", name="Ada")


def _save(api: APIClient, variants: list[dict[str, str]]) -> None:
    saved = api.post(TEMPLATES, {"key": "t", "variants": variants}, format="json")
    assert saved.status_code == 201, saved.content


def _post(api: APIClient, variables: dict[str, Any], **extra: Any) -> Any:
    body = {"recipient": "user-1", "template": "t", "variables": variables, **extra}
    # json.dumps escapes a lone surrogate (`\ud800`): the test client's renderer cannot.
    return api.post(NOTIFICATIONS, json.dumps(body), content_type="application/json")


def _notify(api: APIClient, variants: list[dict[str, str]], variables: dict[str, Any]) -> Any:
    _save(api, variants)
    return _post(api, variables)


def _answer(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json().get("message")


CASES: list[tuple[list[dict[str, str]], dict[str, Any]]] = [
    ([PLAIN_EMAIL], {"id": "A-1"}),
    ([PLAIN_EMAIL], {"id": "A-1\r\nBcc: x@example.com"}),  # breaks the subject: 400
    ([PLAIN_EMAIL], {"id": "A-1\n"}),  # stripped from the subject: accepted
    ([PLAIN_EMAIL], {"id": "<" * 24}),  # 96 bytes escaped in the HTML: 4 + 2 + 96 + ... fits
    ([PLAIN_EMAIL], {"id": "<" * 30}),  # escaped, over the 200 bytes below: 400
    ([PLAIN_EMAIL], {"id": "é" * 40}),  # 80 bytes each time: 400 (40 characters would fit)
    ([PLAIN_EMAIL], {"id": "\ud800"}),  # a lone surrogate: 400, does not render
    ([{"channel": "sms", "body": "{{ id }}"}], {"id": "x" * 4096}),  # the limit exactly
    ([{"channel": "sms", "body": "{{ id }}"}], {"id": "x" * 4097}),
    ([{"channel": "sms", "body": "{{ id.upper }}"}], {"id": "x" * 4097}),
    ([{"channel": "sms", "body": "{{ id|upper }}"}], {"id": "a"}),
    ([{"channel": "sms", "body": "{{ id.pop }}"}], {"id": []}),  # raises in the render: 400
    ([{"channel": "sms", "body": "{{ id }}"}], {"id": 12345}),
    ([PLAIN_EMAIL], {"id": "A-1\rBcc: x@example.com"}),  # a lone CR breaks the subject: 400
    ([{"channel": "email", "subject": "Hi {{ recipient.name }}", "body": "b"}], {}),
]


@pytest.mark.django_db
@override_settings(RENDER_MAX_EMAIL_BYTES=200)
@pytest.mark.parametrize(("variants", "variables"), CASES)
def test_the_same_answer_with_and_without_the_bound(
    api: APIClient,
    recipient: Any,
    monkeypatch: pytest.MonkeyPatch,
    variants: list[dict[str, str]],
    variables: dict[str, Any],
) -> None:
    _save(api, variants)
    with_bound = _answer(_post(api, variables))
    accepted = Notification.objects.count()
    monkeypatch.setattr(rendering, "render_bound", lambda **_: None)  # always render

    rendered = _answer(_post(api, variables))

    assert with_bound == rendered
    assert accepted == (1 if with_bound[0] == 202 else 0)


EXPECTED_400 = {1, 4, 5, 6, 8, 9, 11, 13}


@pytest.mark.django_db
@override_settings(RENDER_MAX_EMAIL_BYTES=200)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_the_answers_themselves(api: APIClient, recipient: Any, index: int) -> None:
    variants, variables = CASES[index]

    response = _notify(api, variants, variables)

    assert response.status_code == (400 if index in EXPECTED_400 else 202), response.content
    if response.status_code == 400:
        assert set(response.json()["fields"]) == {"variables"}
        assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_plain_parts_that_fit_are_not_rendered(
    api: APIClient, recipient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    real = rendering.render

    def counting(**kwargs: Any) -> Any:
        renders.append(kwargs["body"])
        return real(**kwargs)

    _save(api, [PLAIN_EMAIL, {"channel": "sms", "body": "{{ id|upper }}"}])
    monkeypatch.setattr(rendering, "render", counting)

    default = _post(api, {"id": "A-1"})  # every channel of the template: email and sms
    email = _post(api, {"id": "A-1"}, channels=["email"])

    assert default.status_code == 202
    assert email.status_code == 202
    # Only the filtered SMS body is rendered (once); the plain email never.
    assert renders == ["{{ id|upper }}"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Ada\rBcc: x@example.com", "Ada\nLovelace"])
def test_a_line_break_in_the_recipients_name_breaks_the_subject(
    api: APIClient, api_key: tuple[ApiKey, str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    RecipientFactory(client=api_key[0].client, external_id="user-1", name=name)
    _save(api, [{"channel": "email", "subject": "Hi {{ recipient.name }}", "body": "b"}])

    with_bound = _answer(_post(api, {}))
    monkeypatch.setattr(rendering, "render_bound", lambda **_: None)  # always render
    rendered = _answer(_post(api, {}))

    assert with_bound[0] == 400
    assert "renders its subject with a line break" in with_bound[1]
    assert with_bound == rendered
    assert Notification.objects.count() == 0
