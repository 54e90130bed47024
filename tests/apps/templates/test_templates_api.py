from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import ApiKeyFactory, TemplateFactory

URL = "/api/v1/templates"
VARIANTS: list[dict[str, str]] = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "Order {{ order_id }} shipped",
        "body": "Hi {{ recipient.name }}, order {{ order_id }} is on its way.",
        "html": "<p>Order <b>{{ order_id }}</b></p>",
    },
    {"channel": "email", "locale": "pt-BR", "subject": "Pedido {{ order_id }}", "body": "Oi"},
    {"channel": "sms", "locale": "en", "body": "Order {{ order_id }} shipped."},
    {"channel": "push", "locale": "en", "title": "Shipped", "body": "Order {{ order_id }}"},
    {"channel": "inapp", "locale": "en", "title": "Shipped", "body": "{{ carrier }}"},
]
BODY: dict[str, Any] = {
    "key": "order_shipped",
    "category": "orders",
    "priority": "high",
    "variants": VARIANTS,
}


def client_of(api_key: tuple[ApiKey, str]) -> Any:
    return api_key[0].client


@pytest.mark.django_db
def test_create_template(api: APIClient, api_key: tuple[ApiKey, str]) -> None:
    response = api.post(URL, BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["key"], body["category"], body["priority"], body["version"]) == (
        "order_shipped",
        "orders",
        "high",
        1,
    )
    assert body["required_variables"] == ["carrier", "order_id"]
    assert {(v["channel"], v["locale"]) for v in body["variants"]} == {
        ("email", "en"),
        ("email", "pt-BR"),
        ("sms", "en"),
        ("push", "en"),
        ("inapp", "en"),
    }
    template = Template.objects.get(client=client_of(api_key), key="order_shipped")
    assert template.versions.get().variants.count() == 5


@pytest.mark.django_db
def test_post_existing_key_is_409(api: APIClient) -> None:
    api.post(URL, BODY, format="json")

    response = api.post(URL, BODY, format="json")

    assert response.status_code == 409
    assert_error_shape(response.json(), "conflict")
    assert TemplateVersion.objects.count() == 1


@pytest.mark.django_db
def test_put_creates_then_adds_immutable_versions(api: APIClient) -> None:
    put_body = {k: v for k, v in BODY.items() if k != "key"}
    first = api.put(f"{URL}/welcome", put_body, format="json")
    changed = {**put_body, "variants": [{"channel": "sms", "body": "New {{ code }}"}]}

    second = api.put(f"{URL}/welcome", changed, format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["version"] == 2
    assert second.json()["variants"] == [
        {
            "channel": "sms",
            "locale": "en",
            "label": "",
            "weight": 1,
            "subject": "",
            "title": "",
            "body": "New {{ code }}",
            "html": "",
        }
    ]
    v1 = TemplateVersion.objects.get(template__key="welcome", number=1)
    assert v1.variants.count() == 5
    assert api.get(f"{URL}/welcome").json()["version"] == 2


@pytest.mark.django_db
def test_versions_listed_newest_first(api: APIClient) -> None:
    put_body = {k: v for k, v in BODY.items() if k != "key"}
    for _ in range(3):
        api.put(f"{URL}/welcome", put_body, format="json")

    response = api.get(f"{URL}/welcome/versions", {"page_size": 2})

    assert response.status_code == 200
    page = response.json()
    assert [v["number"] for v in page["results"]] == [3, 2]
    assert len(page["results"][0]["variants"]) == 5
    assert page["next"]
    rest = api.get(page["next"]).json()
    assert [v["number"] for v in rest["results"]] == [1]
    assert rest["next"] is None
    one = api.get(f"{URL}/welcome/versions/2")
    assert one.status_code == 200
    assert one.json()["number"] == 2
    assert api.get(f"{URL}/welcome/versions/9").status_code == 404
    assert api.get(f"{URL}/welcome/versions/99999999999999999999").status_code == 404


@pytest.mark.django_db
def test_list_is_cursor_paginated_and_scoped_to_client(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    for n in range(5):
        TemplateFactory(client=client_of(api_key), key=f"t{n}")
    TemplateFactory(key="someone_elses")

    first = api.get(URL, {"page_size": 3}).json()
    second = api.get(first["next"]).json()

    assert [t["key"] for t in first["results"]] == ["t0", "t1", "t2"]
    assert [t["key"] for t in second["results"]] == ["t3", "t4"]
    assert second["next"] is None
    assert first["results"][0]["version"] == 1


@pytest.mark.django_db
def test_ops_key_lists_every_clients_templates() -> None:
    TemplateFactory(key="a_tpl")
    TemplateFactory(key="b_tpl")
    _, raw = ApiKeyFactory.create_with_raw(is_ops=True)
    ops = APIClient()
    ops.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = ops.get(URL)

    assert [t["key"] for t in response.json()["results"]] == ["a_tpl", "b_tpl"]
    assert ops.get(f"{URL}/a_tpl").status_code == 200


@pytest.mark.django_db
def test_unknown_and_other_clients_template_is_404(api: APIClient) -> None:
    TemplateFactory(key="theirs")

    for path in (f"{URL}/nope", f"{URL}/theirs", f"{URL}/theirs/versions"):
        response = api.get(path)

        assert response.status_code == 404
        assert_error_shape(response.json(), "not_found")


@pytest.mark.django_db
def test_put_does_not_touch_another_clients_template(api: APIClient) -> None:
    theirs = TemplateFactory(key="shared_key")

    response = api.put(f"{URL}/shared_key", {"variants": VARIANTS[2:3]}, format="json")

    assert response.status_code == 201
    assert theirs.versions.count() == 1
    assert Template.objects.filter(key="shared_key").count() == 2


@pytest.mark.django_db
def test_bad_cursor_is_400_in_error_shape(api: APIClient) -> None:
    response = api.get(URL, {"cursor": "garbage"})

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert response.json()["fields"] == {"cursor": ["invalid cursor"]}


@pytest.mark.django_db
def test_syntax_error_names_the_variant(api: APIClient) -> None:
    variants = [VARIANTS[0], {"channel": "sms", "body": "Order {% if %} shipped"}]

    response = api.post(URL, {**BODY, "variants": variants}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "invalid")
    assert "variant 1 (sms/en) body" in body["message"]
    assert set(body["fields"]["variants"]) == {"1"}
    assert set(body["fields"]["variants"]["1"]) == {"body"}
    assert Template.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "{{ order_id|nonexistent_filter }}",
        "{% load humanize %}{{ x }}",
        "{% include 'other.html' %}",
        "{% extends 'base.html' %}",
    ],
)
def test_sources_that_would_crash_a_worker_are_400(api: APIClient, source: str) -> None:
    variants = [{"channel": "push", "title": "Hi", "body": source}]

    response = api.post(URL, {**BODY, "variants": variants}, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert "variant 0 (push/en) body" in response.json()["message"]
    assert Template.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "x"}, "key"),
        ({"key": "Not A Slug!"}, "key"),
        ({"key": 12}, "key"),
        ({"variants": []}, "variants"),
        ({"variants": "email"}, "variants"),
        ({"variants": [{"channel": "fax", "body": "x"}]}, "variants"),
        ({"variants": [{"channel": "email", "body": "no subject"}]}, "variants"),
        ({"variants": [{"channel": "sms", "body": "x", "html": "<p>x</p>"}]}, "variants"),
        ({"variants": [{"channel": "sms", "subject": "s", "body": "x"}]}, "variants"),
        ({"variants": [{"channel": "push", "body": "no title"}]}, "variants"),
        ({"variants": [{"channel": "inapp", "title": "t"}]}, "variants"),
        ({"variants": [{"channel": "sms", "body": 5}]}, "variants"),
        ({"variants": [{"channel": "sms", "locale": "xx_bad!", "body": "x"}]}, "variants"),
        ({"variants": [VARIANTS[2], VARIANTS[2]]}, "variants"),
        ({"priority": "urgent"}, "priority"),
        ({"category": "has space"}, "category"),
        ({"category": 7}, "category"),
        ({"category": "orders\n"}, "category"),  # matched whole, not trimmed
        ({"variables": "order_id"}, "variables"),
        ({"variables": ["not-an-identifier"]}, "variables"),
        ({"variables": ["recipient"]}, "variables"),
    ],
)
def test_create_rejects_bad_input(api: APIClient, body: dict[str, Any], field: str) -> None:
    payload = {**BODY, **body}
    if "key" not in body and field == "key":
        payload.pop("key")

    response = api.post(URL, payload, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {field}
    assert Template.objects.count() == 0


@pytest.mark.django_db
def test_variant_errors_are_reported_per_variant(api: APIClient) -> None:
    variants = [VARIANTS[2], {"channel": "email", "body": "x"}]

    response = api.post(URL, {**BODY, "variants": variants}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"]["variants"] == {
        "1": {"subject": ["Required for email variants."]}
    }


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ['{"key": "x", ', "[]", '"text"'])
def test_malformed_or_non_object_json_is_400(api: APIClient, raw: str) -> None:
    response = api.post(URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "invalid"}
    assert Template.objects.count() == 0


@pytest.mark.django_db
def test_put_rejects_too_long_key(api: APIClient) -> None:
    response = api.put(f"{URL}/{'k' * 101}", {"variants": VARIANTS}, format="json")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"key"}


@pytest.mark.django_db
def test_recipient_token_cannot_use_templates(demo: dict[str, Any]) -> None:
    from apps.recipients.tokens import recipient_token_mint

    app = APIClient()
    app.credentials(
        HTTP_AUTHORIZATION=f"Recipient {recipient_token_mint(recipient=demo['recipient']).token}"
    )

    for response in (app.get(URL), app.post(URL, BODY, format="json"), app.get(f"{URL}/x")):
        assert response.status_code == 403
        assert_error_shape(response.json(), "permission_denied")
    assert TemplateVariant.objects.filter(version__template__key="order_shipped").count() == 4


@pytest.mark.django_db
def test_no_key_is_401() -> None:
    response = APIClient().get(URL)

    assert response.status_code == 401
    assert_error_shape(response.json(), "not_authenticated")


@pytest.mark.django_db
def test_notification_uses_api_created_template_and_checks_its_variables(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    from tests.factories import RecipientFactory

    RecipientFactory(client=client_of(api_key), external_id="user-1")
    api.post(URL, BODY, format="json")
    request = {"recipient": "user-1", "template": "order_shipped", "channels": ["sms"]}

    missing = api.post("/api/v1/notifications", {**request, "variables": {}}, format="json")
    accepted = api.post(
        "/api/v1/notifications",
        {**request, "variables": {"order_id": "A-1", "carrier": "UPS"}},
        format="json",
    )

    assert missing.status_code == 400
    assert set(missing.json()["fields"]) == {"variables"}
    assert accepted.status_code == 202
