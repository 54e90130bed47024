"""The analytics page in the admin: staff only, the rollups of a date range per day and
channel, overall or for one template (linked from its admin page)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.templates.models import Template
from tests.apps.analytics.seeding import T0, hist, rollup
from tests.factories import ApiClientFactory, TemplateFactory

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
RANGE = "start=2026-11-01&end=2026-11-03"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="pw", is_staff=True))
    return client


@pytest.fixture
def welcome() -> Template:
    shop, bank = ApiClientFactory(name="shop"), ApiClientFactory(name="bank")
    welcome = TemplateFactory(client=shop, key="welcome")
    rollup(
        client=shop,
        template=welcome,
        hour=T0 + 9 * H,
        variant="A",
        provider="sendgrid",
        sent=8,
        delivered=7,
        opened=2,
        accept_to_sent_ms_sum=8 * 90,
        accept_to_sent_ms_hist=hist(*[90] * 8),
        cost_micros=800,
    )
    rollup(
        client=shop, template=welcome, hour=T0 + 30 * H, channel="sms", sent=2, cost_micros=15_800
    )
    rollup(client=bank, template=TemplateFactory(client=bank, key="otp"), hour=T0, sent=100)
    return welcome


def test_staff_see_every_client_per_day_and_per_channel(staff: Client, welcome: Template) -> None:
    response = staff.get(f"/admin/analytics/?{RANGE}")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('role="img"') == 4
    context = response.context
    assert [(r["key"], r["counts"]["sent"]) for r in context["day_rows"]] == [
        ("2026-11-01", 108),
        ("2026-11-02", 2),
    ]
    assert [(r["key"], r["counts"]["sent"], r["cost"]) for r in context["channel_rows"]] == [
        ("email", 108, "0.000800"),
        ("sms", 2, "0.015800"),
    ]
    assert "Every client and template, every channel, 2026-11-01 to 2026-11-03" in page
    assert "cost 0.016600 USD" in page
    assert 'name="start" value="2026-11-01"' in page
    assert 'name="end" value="2026-11-03"' in page
    assert context["experiments"] == []


def test_one_template_and_one_channel(staff: Client, welcome: Template) -> None:
    response = staff.get(f"/admin/analytics/?{RANGE}&template={welcome.pk}&channel=email")

    context = response.context
    assert [(r["key"], r["counts"]["sent"]) for r in context["day_rows"]] == [("2026-11-01", 8)]
    assert [r["key"] for r in context["channel_rows"]] == ["email"]
    row = context["day_rows"][0]
    assert row["rates"]["delivery"] == 0.875
    assert row["latency_ms"]["accept_to_sent"]["p50"] == 100
    assert "Template <strong>welcome</strong> of shop, email" in response.content.decode()


def test_the_template_admin_page_links_to_its_analytics(staff: Client, welcome: Template) -> None:
    User.objects.filter(username="ops").update(is_superuser=True)

    page = staff.get(f"/admin/templates/template/{welcome.pk}/change/").content.decode()

    assert f'href="/admin/analytics/?template={welcome.pk}"' in page


def test_the_admin_index_links_to_the_page(staff: Client) -> None:
    assert 'href="/admin/analytics/"' in staff.get("/admin/").content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-11-05&end=2026-11-01",
        "start=2020-01-01&end=2026-11-01",
        "end=9999-12-31",
        "end=0001-01-01",
        "start=nonsense",
        "channel=fax",
        "template=-1",
    ],
)
def test_bad_filters_show_the_error_and_the_default_range(staff: Client, query: str) -> None:
    response = staff.get(f"/admin/analytics/?{query}")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert response.context["end"] == dt.datetime.now(dt.UTC).date()


def test_only_staff_may_see_it() -> None:
    client = Client()
    anonymous = client.get("/admin/analytics/")
    client.force_login(User.objects.create_user("someone", password="pw"))
    not_staff = client.get("/admin/analytics/")

    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/admin/analytics/"
    assert not_staff.status_code == 302


def test_a_templates_page_shows_its_ab_test_without_promote_buttons(staff: Client) -> None:
    from tests.apps.analytics.test_experiments import textbook, variants

    template = TemplateFactory(key="welcome", variants=variants(("A", 50), ("B", 50)))
    textbook(template)

    response = staff.get(
        f"/admin/analytics/?start=2026-11-01&end=2026-11-07&template={template.pk}"
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="experiment"' in page
    assert 'class="experiment-label-B"' in page
    assert "verdict: b" in page
    assert "Promote B" not in page  # promoting is the template page's, linked from here
    assert f"/admin/templates/template/{template.pk}/change/#template-experiments" in page
    (test,) = response.context["experiments"]
    assert [arm["sent"] for arm in test["labels"]] == [1000, 1000]


def test_the_overall_page_has_no_ab_block(staff: Client, welcome: Template) -> None:
    response = staff.get(f"/admin/analytics/?{RANGE}")

    assert 'id="experiment"' not in response.content.decode()
    assert response.context["experiments"] == []
