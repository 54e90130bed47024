"""The template change page's live preview in headless Chromium: it renders what the form
holds before it is saved, and shows a save's problems beside their field."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.templates.models import Template, TemplateVersion
from tests.support.asgi import AsgiServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_preview_reflects_an_unsaved_edit(
    staff_page: Page, staff_site: AsgiServer, template: Template, tmp_path: Path
) -> None:
    page = staff_page  # logged in as staff (tests/browser/conftest.py)
    page.goto(f"{staff_site.url}/admin/templates/template/{template.pk}/change/")
    sms_body = page.locator(".preview-sms-en .preview-body")
    expect(sms_body).to_have_text("Order <order_id> shipped.")
    variants = page.locator("#id_variants")

    edited = variants.input_value().replace(
        "Order {{ order_id }} shipped.", "Parcel {{ order_id }} is out for delivery."
    )
    variants.fill(edited)
    expect(sms_body).to_have_text("Parcel <order_id> is out for delivery.")
    expect(page.locator(".preview-source")).to_contain_text("What the form holds (unsaved)")
    # Every variant is rendered, the saved ones beside the edited one.
    expect(page.locator(".preview-push-en .preview-title")).to_have_text("Shipped")
    page.fill("#preview-variables", '{"order_id": "A-1001"}')
    expect(sms_body).to_have_text("Parcel A-1001 is out for delivery.")
    expect(page.locator(".preview-email-en .preview-subject")).to_have_text("Order A-1001 shipped")
    shot = tmp_path / "template-preview.png"
    page.locator("#content").screenshot(path=str(shot))

    # A new variable the sample does not set: named beside the sample variables.
    variants.fill(edited.replace("is out for delivery.", "is out: {{ tracking_url }}"))
    expect(page.locator("#live-errors-preview-variables")).to_have_text(
        "Missing template variables: tracking_url."
    )
    # A forbidden tag: named beside the variants, before any save.
    variants.fill(edited.replace("Parcel", "{% load static %}Parcel"))
    expect(page.locator("#live-errors-variants")).to_contain_text(
        "The {% load %} tag is not allowed in templates."
    )
    expect(page.locator("#live-errors-preview-variables")).to_have_count(0)
    variants.fill(edited)
    expect(page.locator("#live-errors-variants")).to_have_count(0)
    expect(sms_body).to_have_text("Parcel A-1001 is out for delivery.")

    assert TemplateVersion.objects.filter(template=template).count() == 1  # nothing saved
    assert shot.stat().st_size > 20_000


def test_a_preview_request_that_fails_shows_a_note_and_keeps_the_form(
    staff_page: Page, staff_site: AsgiServer, template: Template
) -> None:
    page = staff_page
    page.goto(f"{staff_site.url}/admin/templates/template/{template.pk}/change/")
    expect(page.locator(".preview-sms-en .preview-body")).to_have_text("Order <order_id> shipped.")
    # The server answering an error (a session that expired, a proxy's 502), then no answer.
    page.route("**/preview-draft/", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    variants = page.locator("#id_variants")
    edited = variants.input_value().replace("shipped.", "is on its way.")
    variants.fill(edited)

    note = page.locator("#template-preview-results .preview-failed")
    expect(note).to_have_text(
        "The preview could not be updated (the server answered 502); the form is unchanged "
        "and saving still works."
    )
    page.unroute("**/preview-draft/")
    page.route("**/preview-draft/", lambda route: route.abort())
    page.fill("#preview-variables", '{"order_id": "A-1"}')
    expect(note).to_contain_text("The preview could not be updated (")
    assert variants.input_value() == edited
