"""The template admin: the change page's live preview of the saved template, the preview page
(variants, locales, older versions), read-only versions and variants, and the form that adds a
template and saves a new version only when its variants change. (The live preview of unsaved
edits: test_template_draft_preview.py.)"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.templates.models import Template, TemplateVersion
from apps.templates.services import template_save
from tests.admin.helpers import template_form
from tests.factories import ApiClientFactory, TemplateFactory


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
def test_admin_refuses_a_category_the_api_refuses(staff: Client) -> None:
    client = ApiClientFactory()
    sms = [{"channel": "sms", "locale": "en", "body": "Code {{ code }}"}]

    response = staff.post(
        reverse("admin:templates_template_add"),
        template_form(client.pk, "otp", sms, category="Weekly news"),
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
        reverse("admin:templates_template_add"), template_form(client.pk, "otp", sms)
    )
    template = Template.objects.get(key="otp")
    url = reverse("admin:templates_template_change", args=[template.pk])
    unchanged = staff.post(url, template_form(client.pk, "otp", sms, category="security"))
    changed = staff.post(
        url, template_form(client.pk, "otp", [{**sms[0], "body": "Your code: {{ code }}"}])
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

    response = staff.post(url, template_form(template.client_id, template.key, variants))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"variants"}
    assert template.versions.count() == 1
