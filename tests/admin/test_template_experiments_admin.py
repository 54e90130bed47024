"""The template admin's A/B tests: each test's results on the change page and its Promote
buttons (POST with CSRF, staff with the change permission only, a message after)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from apps.analytics.models import Rollup
from apps.deliveries.models import VariantAssignment
from apps.templates.models import Template
from tests.admin.helpers import template_form
from tests.factories import RecipientFactory, TemplateFactory


def ab_template() -> Template:
    """`welcome` with an email copy test, A 70 / B 30 (sms untested), running for 40 days: the
    A/B tables' tests use it too (tests/apps/analytics, tests/browser)."""
    template = TemplateFactory(
        key="welcome",
        variants=[
            {"channel": "email", "label": "A", "weight": 70, "subject": "Old", "body": "a"},
            {"channel": "email", "label": "B", "weight": 30, "subject": "New", "body": "b"},
            {"channel": "sms", "body": "Hi"},
        ],
    )
    # The test has run for 40 days: the admin's last 30 days count from their first hour.
    template.versions.update(created_at=timezone.now() - dt.timedelta(days=40))
    return template


def csrf_browser(user: User) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def page_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.mark.django_db
def test_change_page_shows_the_test_and_promote_makes_a_noted_version() -> None:
    template = ab_template()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    for label, sent, opened in (("A", 400, 80), ("B", 300, 90)):
        Rollup.objects.create(
            hour=hour, client=template.client, template=template, channel="email",
            variant=label, provider="sendgrid", sent=sent, delivered=sent, opened=opened,
        )  # fmt: skip
    alice = User.objects.create_superuser("alice", "alice@example.com", "pw")
    browser = csrf_browser(alice)
    url = f"/admin/templates/template/{template.pk}/change/"

    page = browser.get(url)

    html = page.content.decode()
    assert page.status_code == 200
    assert "A/B tests (last 30 days)" in html
    row_b = html[html.index('class="experiment-label-B"') :]
    row_b = row_b[: row_b.index("</tr>")]
    cells = re.findall(r"<td>([^<]*)</td>", row_b)
    assert cells[:8] == ["B", "30", "300", "300", "90", "0", "0.3000", "0.0000"]
    # 90/300 against 80/400: difference 0.1, 95% interval [0.0350, 0.1650], z = 3.05.
    assert "&Delta; 0.1000 [0.0350, 0.1650], p=0.0023, verdict: b" in row_b
    assert 'name="label" value="B"' in row_b
    assert "Promote B" in row_b

    refused = browser.post(
        f"/admin/templates/template/{template.pk}/promote/",
        {"channel": "email", "locale": "en", "label": "B"},
    )
    assert refused.status_code == 403  # no CSRF token
    assert template.versions.count() == 1

    done = browser.post(
        f"/admin/templates/template/{template.pk}/promote/",
        {"channel": "email", "locale": "en", "label": "B", "csrfmiddlewaretoken": page_token(html)},
        follow=True,
    )

    assert done.redirect_chain == [(url, 302)]
    messages = [str(m) for m in done.context["messages"]]
    assert messages == ["Promoted B of email/en: version 2 sends its copy to everyone."]
    latest = template.versions.order_by("-number").first()
    assert latest is not None
    assert latest.note == "promoted B of email/en (by alice)"
    assert [(v.channel, v.label, v.subject) for v in latest.variants.order_by("channel")] == [
        ("email", "", "New"),
        ("sms", "", ""),
    ]
    after = done.content.decode()
    assert "A/B tests (last 30 days)" not in after  # the test has ended
    assert "promoted B of email/en (by alice)" in after  # the versions list shows the note


@pytest.mark.django_db
def test_promote_wants_post_and_the_change_permission_and_reports_a_bad_label(
    staff: Client,
) -> None:
    template = ab_template()
    url = f"/admin/templates/template/{template.pk}/promote/"
    viewer = User.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_template"))
    view_only = Client()
    view_only.force_login(viewer)

    assert staff.get(url).status_code == 405
    page = view_only.get(f"/admin/templates/template/{template.pk}/change/").content.decode()
    assert "A/B tests (last 30 days)" in page
    assert "Promote A" not in page
    assert (
        view_only.post(url, {"channel": "email", "locale": "en", "label": "A"}).status_code == 403
    )
    bad = staff.post(url, {"channel": "email", "locale": "en", "label": "Z"}, follow=True)

    assert [str(m) for m in bad.context["messages"]] == [
        "Cannot promote: no variant labelled 'Z' for email/en in the current version."
    ]
    assert template.versions.count() == 1


@pytest.mark.django_db
def test_the_variant_editor_shows_labels_and_weights_and_saves_a_version_only_on_change(
    staff: Client,
) -> None:
    template = ab_template()
    url = f"/admin/templates/template/{template.pk}/change/"
    shown = json.loads(staff.get(url).context["adminform"].form["variants"].value())
    assert [(v["channel"], v.get("label"), v.get("weight")) for v in shown] == [
        ("email", "A", 70),
        ("email", "B", 30),
        ("sms", None, None),
    ]

    unchanged = staff.post(url, template_form(template.client_id, "welcome", shown))
    reweighted = [{**shown[0], "weight": 50}, {**shown[1], "weight": 50}, shown[2]]
    changed = staff.post(url, template_form(template.client_id, "welcome", reweighted))
    unlabelled = [{**shown[0], "label": ""}, shown[1], shown[2]]
    refused = staff.post(url, template_form(template.client_id, "welcome", unlabelled))

    assert (unchanged.status_code, changed.status_code, refused.status_code) == (302, 302, 200)
    assert "variant 0 (email/en) label needs a label" in refused.content.decode()
    latest = template.versions.order_by("-number")
    assert [v.number for v in latest] == [2, 1]
    weights = latest[0].variants.order_by("channel", "label").values_list("label", "weight")
    assert list(weights) == [("A", 50), ("B", 50), ("", 1)]


@pytest.mark.django_db
@pytest.mark.parametrize("object_id", ["²", "abc", "0", "99999999", "1.5", "%C2%B2x"])
def test_a_hostile_template_id_is_a_404_on_the_change_page_and_promote(
    staff: Client, object_id: str
) -> None:
    ab_template()

    change = staff.get(f"/admin/templates/template/{object_id}/change/")
    promote = staff.post(
        f"/admin/templates/template/{object_id}/promote/",
        {"channel": "email", "locale": "en", "label": "B"},
    )

    assert (change.status_code, promote.status_code) == (404, 404)
    assert Template.objects.get().versions.count() == 1


@pytest.mark.django_db
def test_the_30_days_start_at_an_hour_and_promote_forgets_the_channels_assignments(
    staff: Client,
) -> None:
    template = ab_template()
    oldest = (timezone.now() - dt.timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    Rollup.objects.create(
        hour=oldest, client=template.client, template=template, channel="email",
        variant="B", provider="sendgrid", sent=7,
    )  # fmt: skip
    people = RecipientFactory.create_batch(3, client=template.client)
    for person in people:
        VariantAssignment.objects.create(
            template=template, channel="email", recipient=person, label="B"
        )
    VariantAssignment.objects.create(
        template=template, channel="sms", recipient=people[0], label="A"
    )  # another channel's: kept
    url = f"/admin/templates/template/{template.pk}/change/"

    html = staff.get(url).content.decode()
    row_b = html[html.index('class="experiment-label-B"') :]
    cells = re.findall(r"<td>([^<]*)</td>", row_b[: row_b.index("</tr>")])
    staff.post(
        f"/admin/templates/template/{template.pk}/promote/",
        {"channel": "email", "locale": "en", "label": "B"},
    )

    assert cells[:3] == ["B", "30", "7"]  # the first hour of the 30 days counts
    assert template.versions.count() == 2
    assert list(VariantAssignment.objects.values_list("channel", "label")) == [("sms", "A")]
