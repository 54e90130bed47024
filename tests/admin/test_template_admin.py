from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from apps.recipients.models import Recipient
from apps.templates.models import Template, TemplateVersion
from apps.templates.services import template_save
from tests.factories import (
    ApiClientFactory,
    DeviceFactory,
    PreferenceFactory,
    RecipientFactory,
    TemplateFactory,
)


@pytest.mark.django_db
def test_change_page_shows_live_preview_with_sample_values(staff: Client) -> None:
    template = TemplateFactory(key="order_shipped")

    page = staff.get(reverse("admin:templates_template_change", args=[template.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "Live preview" in html
    # The sample value of each required variable is its own name.
    assert "Order &lt;order_id&gt; shipped" in html
    assert 'class="preview-sms-en"' in html
    assert "Version 1 rendered" in html


@pytest.mark.django_db
def test_preview_renders_every_variant_from_sample_variables(staff: Client) -> None:
    template = TemplateFactory(key="order_shipped")
    url = reverse("admin:templates_template_preview", args=[template.pk])

    response = staff.get(
        url, {"variables": json.dumps({"order_id": "A-<42>"}), "name": "Grace", "fragment": "1"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="preview-subject">Order A-&lt;42&gt; shipped</span>' in html
    assert "Hi Grace, order A-&lt;42&gt; is on its way." in html
    # Email HTML is autoescaped when rendered, then escaped again into the iframe's srcdoc.
    assert "&lt;b&gt;A-&amp;lt;42&amp;gt;&lt;/b&gt;" in html
    assert "A-<42>" not in html  # nothing a variable holds reaches the admin page unescaped
    for channel in ("email", "sms", "push", "inapp"):
        assert f'class="preview-{channel}-en"' in html


@pytest.mark.django_db
def test_preview_per_locale_and_older_version(staff: Client) -> None:
    client = ApiClientFactory()
    template, _ = template_save(
        client=client,
        key="welcome",
        variants=[
            {"channel": "sms", "locale": "en", "body": "Welcome {{ code }}"},
            {"channel": "sms", "locale": "pt-BR", "body": "Bem-vindo {{ code }}"},
        ],
    )
    template_save(client=client, key="welcome", variants=[{"channel": "sms", "body": "v2"}])
    url = reverse("admin:templates_template_preview", args=[template.pk])

    old = staff.get(url, {"version": "1", "variables": '{"code": "X9"}'}).content.decode()
    new = staff.get(url, {"variables": '{"code": "X9"}'}).content.decode()

    assert "Welcome X9" in old
    assert "Bem-vindo X9" in old
    assert 'class="preview-sms-pt-BR"' in old
    assert "v2" in new
    assert "Welcome X9" not in new


@pytest.mark.django_db
def test_preview_reports_bad_json_without_crashing(staff: Client) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_preview", args=[template.pk])

    for raw in ("{not json", "[1, 2]"):
        response = staff.get(url, {"variables": raw, "fragment": "1"})

        assert response.status_code == 200
        assert 'class="errornote"' in response.content.decode()


@pytest.mark.django_db
def test_preview_requires_staff(db: None) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_preview", args=[template.pk])

    response = Client().get(url)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_versions_and_variants_are_read_only(staff: Client) -> None:
    template = TemplateFactory()
    version = TemplateVersion.objects.get(template=template)
    variant = version.variants.first()
    assert variant is not None

    post = staff.post(
        reverse("admin:templates_templateversion_change", args=[version.pk]),
        {"number": 99},
    )
    add = staff.get(reverse("admin:templates_templateversion_add"))
    delete = staff.post(
        reverse("admin:templates_templatevariant_delete", args=[variant.pk]), {"post": "yes"}
    )

    assert post.status_code == 403
    assert add.status_code == 403
    assert delete.status_code == 403
    version.refresh_from_db()
    assert version.number == 1
    assert version.variants.count() == 4


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


def _template_form(client_id: int, key: str, variants: object, **extra: str) -> dict[str, str]:
    return {
        "client": str(client_id),
        "key": key,
        "category": "orders",
        "default_priority": "normal",
        "variables": "[]",
        "variants": variants if isinstance(variants, str) else json.dumps(variants),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **extra,
    }


@pytest.mark.django_db
def test_admin_refuses_a_category_the_api_refuses(staff: Client) -> None:
    client = ApiClientFactory()
    sms = [{"channel": "sms", "locale": "en", "body": "Code {{ code }}"}]

    response = staff.post(
        reverse("admin:templates_template_add"),
        _template_form(client.pk, "otp", sms, category="Weekly news"),
    )

    assert response.status_code == 200  # the form again, with the error
    assert "Letters, digits and _.:- only (at most 50)." in response.content.decode()
    assert not Template.objects.exists()


@pytest.mark.django_db
def test_admin_adds_template_and_saves_new_versions_only_when_variants_change(
    staff: Client,
) -> None:
    client = ApiClientFactory()
    sms = [{"channel": "sms", "locale": "en", "body": "Code {{ code }}"}]

    added = staff.post(
        reverse("admin:templates_template_add"), _template_form(client.pk, "otp", sms)
    )
    template = Template.objects.get(key="otp")
    url = reverse("admin:templates_template_change", args=[template.pk])
    unchanged = staff.post(url, _template_form(client.pk, "otp", sms, category="security"))
    changed = staff.post(
        url, _template_form(client.pk, "otp", [{**sms[0], "body": "Your code: {{ code }}"}])
    )

    assert (added.status_code, unchanged.status_code, changed.status_code) == (302, 302, 302)
    versions = list(template.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert versions[0].variants.get().body == "Code {{ code }}"
    assert versions[1].variants.get().body == "Your code: {{ code }}"
    assert versions[1].variables == ["code"]
    template.refresh_from_db()
    assert template.category == "orders"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "variants",
    [
        "{not json",
        [],
        [{"channel": "sms", "body": "{% if %}"}],
        [{"channel": "email", "body": "no subject"}],
        [{"channel": "sms", "body": "a"}, {"channel": "sms", "body": "b"}],
    ],
)
def test_admin_rejects_bad_variants_without_a_new_version(staff: Client, variants: object) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_change", args=[template.pk])

    response = staff.post(url, _template_form(template.client_id, template.key, variants))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"variants"}
    assert template.versions.count() == 1


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
    form = _template_form(template.client_id, template.key, [{"channel": "sms", "body": "x"}])
    form[field] = DEEP

    response = staff.post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {field}
    assert "nested deeper than 32 levels" in errors[field][0]
    assert template.versions.count() == 1


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
