"""The template admin's live preview of unsaved edits (the draft preview): what it renders and
saves (nothing), the errors it names beside their fields, deeply nested JSON (a field error,
never a 500, on the saved template's pages too), and who may use it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from apps.templates.models import TemplateVersion
from tests.admin.helpers import template_form
from tests.factories import TemplateFactory

# --- the live preview of unsaved edits --------------------------------------------------------

DRAFT_URL = "/admin/templates/template/preview-draft/"


def _draft(
    staff: Client, variants: object, sample: object, variables: tuple[str, ...] | list[str] = ()
) -> Any:
    response = staff.post(
        DRAFT_URL,
        {
            "variants": json.dumps(variants),
            "variables": json.dumps(list(variables)),
            "sample": json.dumps(sample),
            "name": "Grace",
        },
    )
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_draft_preview_renders_unsaved_variants_and_saves_nothing(staff: Client) -> None:
    template = TemplateFactory(key="order_shipped")
    variants = [
        {"channel": "sms", "body": "Parcel {{ order_id }} is out for delivery."},
        {"channel": "email", "subject": "Parcel {{ order_id }}", "body": "Hi {{ recipient.name }}"},
    ]

    answer = _draft(staff, variants, {"order_id": "A-<7>"})

    assert answer["errors"] == {}
    html = answer["html"]
    assert "What the form holds (unsaved)" in html
    assert (
        '<pre class="preview-body" style="white-space: pre-wrap">Parcel A-&lt;7&gt; is out' in html
    )
    assert '<span class="preview-subject">Parcel A-&lt;7&gt;</span>' in html
    assert "Hi Grace" in html
    assert html.index('class="preview-email-en"') < html.index('class="preview-sms-en"')
    assert TemplateVersion.objects.filter(template=template).count() == 1


@pytest.mark.django_db
def test_the_draft_preview_names_a_forbidden_tag_beside_the_variants(staff: Client) -> None:
    answer = _draft(staff, [{"channel": "sms", "body": "{% load static %}Hi"}], {})

    assert answer["errors"] == {
        "variants": [
            "variant 0 (sms/en) body does not parse: The {% load %} tag is not allowed in "
            "templates."
        ]
    }
    assert "Nothing to preview until the variants are valid" in answer["html"]


@pytest.mark.django_db
def test_the_draft_preview_names_a_missing_variable_beside_the_sample(staff: Client) -> None:
    variants = [
        {"channel": "sms", "body": "{{ order_id }} {% for i in items %}{{ i }}{% endfor %}"}
    ]

    answer = _draft(staff, variants, {"order_id": "A-1"})
    declared = _draft(staff, variants, {"order_id": "A-1"}, variables=["order_id", "total"])

    assert answer["errors"] == {"preview-variables": ["Missing template variables: items."]}
    assert "A-1" in answer["html"]  # still rendered, the loop empty
    assert declared["errors"] == {"preview-variables": ["Missing template variables: total."]}


@pytest.mark.django_db
def test_the_draft_preview_is_a_post_for_staff_only(staff: Client) -> None:
    assert staff.get(DRAFT_URL).status_code == 405
    anonymous = Client().post(DRAFT_URL, {"variants": "[]"})
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]


@pytest.mark.django_db
def test_the_draft_preview_says_the_sample_is_what_to_fix_when_only_it_is_bad(
    staff: Client,
) -> None:
    response = staff.post(
        DRAFT_URL,
        {"variants": json.dumps([{"channel": "sms", "body": "Hi"}]), "sample": "{not json"},
    )

    answer = response.json()
    assert list(answer["errors"]) == ["preview-variables"]
    assert "until the sample variables are a JSON object" in answer["html"]
    assert "until the variants are valid" not in answer["html"]


# --- deeply nested JSON: a field error, never a RecursionError (500) ---------------------------

DEEP = "[" * 5000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "error_field"),
    [("sample", "preview-variables"), ("variables", "variables"), ("variants", "variants")],
)
def test_the_draft_preview_names_deeply_nested_json_beside_its_field(
    staff: Client, field: str, error_field: str
) -> None:
    form = {
        "variants": json.dumps([{"channel": "sms", "body": "Hi {{ name }}"}]),
        "variables": "[]",
        "sample": '{"name": "Ada"}',
        field: DEEP,
    }

    response = staff.post(DRAFT_URL, form)

    assert response.status_code == 200
    errors = response.json()["errors"]
    assert list(errors) == [error_field]
    assert "nested deeper than 32 levels" in errors[error_field][0]


@pytest.mark.django_db
def test_the_preview_page_reports_deeply_nested_sample_variables(staff: Client) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_preview", args=[template.pk])

    fragment = staff.get(url, {"variables": DEEP, "fragment": "1"})
    page = staff.get(url, {"variables": DEEP})

    assert (fragment.status_code, page.status_code) == (200, 200)
    assert "nested deeper than 32 levels" in fragment.content.decode()
    assert "nested deeper than 32 levels" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["variants", "variables"])
def test_saving_deeply_nested_json_is_a_field_error(staff: Client, field: str) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_change", args=[template.pk])
    form = template_form(template.client_id, template.key, [{"channel": "sms", "body": "x"}])
    form[field] = DEEP

    response = staff.post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {field}
    assert "nested deeper than 32 levels" in errors[field][0]
    assert template.versions.count() == 1


@pytest.mark.django_db
def test_view_only_staff_get_no_live_preview_they_could_not_use(db: None) -> None:
    template = TemplateFactory(key="order_shipped")
    viewer = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_template"))
    browser = Client()
    browser.force_login(viewer)

    page = browser.get(reverse("admin:templates_template_change", args=[template.pk]))
    draft = browser.post(DRAFT_URL, {"variants": "[]"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Live preview" not in html
    assert DRAFT_URL not in html
    assert "Open the preview on its own page" in html  # the saved version, on its own page
    assert draft.status_code == 403
