"""A/B variants in the templates API, the admin's variant editor and the checks: the label and
weight rules as 400s, every sibling rendered at POST time and in the preview, promotion."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.core.errors import InvalidInput
from apps.templates.admin_forms import variants_parse
from apps.templates.models import TemplateVersion
from apps.templates.preview import version_preview
from apps.templates.services import template_variant_promote
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import RecipientFactory, TemplateFactory

URL = "/api/v1/templates/welcome"
TWO = "email/en has 2 variants (an A/B test)"


def email(label: str = "", weight: int | None = None, **parts: Any) -> dict[str, Any]:
    variant: dict[str, Any] = {"channel": "email", "subject": f"Hi {label}", "body": "b", **parts}
    if label:
        variant["label"] = label
    if weight is not None:
        variant["weight"] = weight
    return variant


@pytest.mark.django_db
def test_siblings_with_labels_and_weights_are_saved_and_shown(api: APIClient) -> None:
    variants = [email("A", 70), email("B", 30), {"channel": "sms", "body": "no test"}]

    response = api.put(URL, {"variants": variants}, format="json")

    assert response.status_code == 201, response.content
    shown = [(v["channel"], v["label"], v["weight"]) for v in response.json()["variants"]]
    assert shown == [("email", "A", 70), ("email", "B", 30), ("sms", "", 1)]
    versions = api.get(f"{URL}/versions").json()["results"]
    assert [(v["number"], v["note"]) for v in versions] == [(1, "")]
    assert [v["label"] for v in versions[0]["variants"]] == ["A", "B", ""]


@pytest.mark.parametrize(
    ("variants", "says"),
    [
        ([email(), email()], f"variant 0 (email/en) label needs a label: {TWO}."),
        ([email("A"), email()], f"variant 1 (email/en) label needs a label: {TWO}."),
        (
            [email("A"), email("A")],
            "variant 1 (email/en A) label repeats label 'A' within email/en.",
        ),
        ([email("A", 0), email("B", 0)], "At least one email/en variant needs a weight above 0."),
        ([email(weight=0)], "At least one email/en variant needs a weight above 0."),
    ],
)
@pytest.mark.django_db
def test_label_and_weight_rules_are_400s_naming_the_variant(
    api: APIClient, variants: list[dict[str, Any]], says: str
) -> None:
    response = api.put(URL, {"variants": variants}, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert_error_shape(body, "invalid")
    assert body["fields"]["variants"] == [says]
    assert not TemplateVersion.objects.exists()


@pytest.mark.parametrize(
    ("variant", "field", "message"),
    [
        (email("A", -1), "weight", "Ensure this value is greater than or equal to 0."),
        (email("A", 1_000_001), "weight", "Ensure this value is less than or equal to 1000000."),
        (email("A", "2"), "weight", "Must be a JSON integer."),  # type: ignore[arg-type]
        (email("A", True), "weight", "Must be a JSON integer."),  # bool is not a weight
        (email("A b"), "label", "Letters, digits, `_`, `.` or `-` (at most 20), starting"),
        (email("x" * 21), "label", "Ensure this field has no more than 20 characters."),
    ],
)
@pytest.mark.django_db
def test_bad_label_or_weight_values_are_400s(
    api: APIClient, variant: dict[str, Any], field: str, message: str
) -> None:
    response = api.put(URL, {"variants": [variant, email("Z")]}, format="json")

    assert response.status_code == 400, response.content
    problem = response.json()["fields"]["variants"]["0"][field][0]
    assert problem.startswith(message)


@pytest.mark.django_db
def test_the_same_labels_in_another_locale_or_channel_are_another_test(api: APIClient) -> None:
    variants = [email("A"), email("B"), email("A", locale="de"), email("B", locale="de")]

    response = api.put(URL, {"variants": variants}, format="json")

    assert response.status_code == 201, response.content


def test_the_admin_editor_refuses_siblings_without_labels_and_keeps_labels() -> None:
    with pytest.raises(forms.ValidationError) as caught:
        variants_parse('[{"channel": "sms", "body": "a"}, {"channel": "sms", "body": "b"}]')
    assert caught.value.messages == [
        "variant 0 (sms/en) label needs a label: sms/en has 2 variants (an A/B test)."
    ]

    parsed = variants_parse(
        '[{"channel": "sms", "body": "a", "label": "A", "weight": 3},'
        ' {"channel": "sms", "body": "b", "label": "B"}]'
    )
    assert [(v["label"], v["weight"]) for v in parsed] == [("A", 3), ("B", 1)]


@pytest.mark.django_db
def test_the_post_time_render_check_renders_every_sibling(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    client = api_key[0].client
    RecipientFactory(client=client, external_id="u1")
    TemplateFactory(
        client=client,
        key="welcome",
        variants=[
            email("A", subject="Fine", body="{{ n }}"),
            email("B", subject="Hi {{ n }}"),  # a line break in `n` breaks only B's subject
        ],
    )

    response = api.post(
        "/api/v1/notifications",
        {"recipient": "u1", "template": "welcome", "variables": {"n": "x\ny"}},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["fields"]["variables"] == [
        "the email/en B variant of template 'welcome' renders its subject with a line break "
        "(CR or LF)"
    ]


@pytest.mark.django_db
def test_the_preview_renders_every_sibling() -> None:
    template = TemplateFactory(
        key="welcome", variants=[email("A", subject="Hello A"), email("B", subject="Hey B")]
    )

    previews = version_preview(
        version=template.versions.get(),
        variables={},
        recipient={"external_id": "p", "name": "Ada", "locale": "en", "data": {}},
    )

    assert [(p.label, p.subject) for p in previews] == [("A", "Hello A"), ("B", "Hey B")]


@pytest.mark.django_db
def test_promote_keeps_only_that_copy_for_its_channel_and_locale_and_notes_it(
    api: APIClient, api_key: tuple[ApiKey, str]
) -> None:
    client = api_key[0].client
    template = TemplateFactory(
        client=client,
        key="welcome",
        variants=[
            email("A", 70),
            email("B", 30, html="<p>B</p>"),
            email("A", locale="de"),
            email("B", locale="de"),
            {"channel": "sms", "body": "Hi"},
        ],
    )

    version = template_variant_promote(
        template=template, channel="email", locale="en", label="B", actor="alice"
    )

    assert version.number == 2
    assert version.note == "promoted B of email/en (by alice)"
    rows = version.variants.order_by("channel", "locale", "label")
    assert [(v.channel, v.locale, v.label, v.weight, v.subject, v.html) for v in rows] == [
        ("email", "de", "A", 1, "Hi A", ""),
        ("email", "de", "B", 1, "Hi B", ""),
        ("email", "en", "", 1, "Hi B", "<p>B</p>"),
        ("sms", "en", "", 1, "", ""),
    ]
    versions = api.get(f"{URL}/versions").json()["results"]
    assert [(v["number"], v["note"]) for v in versions] == [
        (2, "promoted B of email/en (by alice)"),
        (1, ""),
    ]


@pytest.mark.django_db
def test_promoting_a_label_the_current_version_lacks_is_invalid_input() -> None:
    template = TemplateFactory(key="welcome", variants=[email("A"), email("B")])

    with pytest.raises(InvalidInput) as caught:
        template_variant_promote(
            template=template, channel="email", locale="en", label="C", actor="alice"
        )

    assert caught.value.message == (
        "Cannot promote: no variant labelled 'C' for email/en in the current version."
    )
    assert template.versions.count() == 1
