"""The template admin edits a template's throttle as JSON, checked like the API checks it."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.templates.models import Template
from tests.factories import TemplateFactory

pytestmark = [pytest.mark.django_db]


def form(template: Template, throttle: str) -> dict[str, str]:
    variants = [{"channel": "sms", "locale": "en", "body": "Code {{ code }}"}]
    return {
        "client": str(template.client_id),
        "key": template.key,
        "category": "orders",
        "default_priority": "normal",
        "variables": "[]",
        "throttle": throttle,
        "variants": json.dumps(variants),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }


def test_the_admin_saves_a_throttle_in_its_normal_form_and_clears_it(staff: Client) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_change", args=[template.pk])

    saved = staff.post(url, form(template, '{"limit": 2, "window": "60m"}'))
    template.refresh_from_db()
    stored = template.throttle
    cleared = staff.post(url, form(template, "null"))
    template.refresh_from_db()

    assert (saved.status_code, cleared.status_code) == (302, 302)
    assert stored == {"limit": 2, "window": "1h", "key": ""}
    assert template.throttle is None


@pytest.mark.parametrize(
    "throttle", ['{"limit": 0, "window": "1m"}', '{"limit": 1, "window": "soon"}', '"1/10m"']
)
def test_the_admin_rejects_a_bad_throttle(staff: Client, throttle: str) -> None:
    template = TemplateFactory()
    url = reverse("admin:templates_template_change", args=[template.pk])

    response = staff.post(url, form(template, throttle))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"throttle"}
    template.refresh_from_db()
    assert template.throttle is None
