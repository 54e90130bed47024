"""The analytics page in the admin: staff only, the rollups of a date range per day and
channel, overall or for one template (linked from its admin page)."""

from __future__ import annotations

import datetime as dt
import html
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from apps.analytics.models import Rollup
from apps.analytics.selectors import analytics_report
from apps.ops.analytics_page import analytics_page_context
from apps.ops.management.commands import seed_analytics_demo
from apps.templates.models import Template
from tests.apps.analytics.seeding import T0, hist, rollup
from tests.factories import ApiClientFactory, TemplateFactory

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
RANGE = "start=2026-11-01&end=2026-11-03"


def view_rollup() -> Permission:
    return Permission.objects.get(content_type__app_label="analytics", codename="view_rollup")


@pytest.fixture
def staff() -> Client:
    """Staff with the page's permission (analytics.view_rollup)."""
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(view_rollup())
    client = Client()
    client.force_login(user)
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
    # The same client's other template, on the same days and channel: not counted.
    promo = TemplateFactory(client=welcome.client, key="promo")
    rollup(client=welcome.client, template=promo, hour=T0 + 9 * H, sent=40, delivered=1)
    rollup(client=welcome.client, template=promo, hour=T0 + 30 * H, sent=3)

    response = staff.get(f"/admin/analytics/?{RANGE}&template={welcome.pk}&channel=email")
    every_template = staff.get(f"/admin/analytics/?{RANGE}&channel=email").context

    context = response.context
    assert [(r["key"], r["counts"]["sent"]) for r in context["day_rows"]] == [("2026-11-01", 8)]
    assert [(r["key"], r["counts"]["sent"]) for r in every_template["day_rows"]] == [
        ("2026-11-01", 148),
        ("2026-11-02", 3),
    ]
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
    ("query", "message"),
    [
        ("start=2026-11-05&end=2026-11-01", "`From` must not be after `To`."),
        ("start=2020-01-01&end=2026-11-01", "At most 400 days at once."),
        ("end=9999-12-31", "`To` must be before 9999-12-31."),
        ("end=0001-01-01", "`To` is too early."),
        ("start=nonsense", "From: Enter a valid date."),
        ("channel=fax", "Channel: Select a valid choice. fax is not one of the available choices."),
        ("template=-1", "Template: Ensure this value is greater than or equal to 1."),
        ("template=x", "Template: Enter a whole number."),
    ],
)
def test_bad_filters_show_the_error_and_the_default_range(
    staff: Client, query: str, message: str
) -> None:
    response = staff.get(f"/admin/analytics/?{query}")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert html.escape(message) in response.content.decode()
    assert response.context["end"] == dt.datetime.now(dt.UTC).date()


def test_an_unknown_template_is_a_404(staff: Client, welcome: Template) -> None:
    response = staff.get(f"/admin/analytics/?{RANGE}&template={welcome.pk + 99999}")

    assert response.status_code == 404


def test_staff_without_the_permission_get_a_403(welcome: Template) -> None:
    client = Client()
    client.force_login(User.objects.create_user("clerk", password="pw", is_staff=True))

    response = client.get(f"/admin/analytics/?{RANGE}")
    index = client.get("/admin/").content.decode()

    assert response.status_code == 403
    assert 'href="/admin/analytics/"' not in index


def test_the_page_is_one_report_query_and_agrees_with_the_reports(
    staff: Client, welcome: Template, django_assert_max_num_queries: Any
) -> None:
    shop = welcome.client
    rollup(
        client=shop,
        template=welcome,
        hour=T0 + 2 * H,
        channel="push",
        accepted=5,
        skipped=2,
        skipped_reasons={"opted_out": 1, "quiet_hours": 1},
        sent=3,
        failed=1,
        dead=1,
        cost_micros=7,
    )
    rollup(
        client=shop,
        template=welcome,
        hour=T0 + 26 * H,
        channel="push",
        skipped=1,
        skipped_reasons={"opted_out": 1},
        accepted=1,
    )
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 3)
    scope = {"client": None, "start": T0, "end": T0 + 3 * D, "template_key": None}

    # session, user, the user's and groups' permissions, the rollup cells, their skip reasons
    with django_assert_max_num_queries(6):
        response = staff.get(f"/admin/analytics/?start={start}&end={end}")
    context = analytics_page_context(start=start, end=end, channel=None, template=None)

    assert response.status_code == 200
    by_day = analytics_report(**scope, group_by="day").as_dict()
    by_channel = analytics_report(**scope, group_by="channel").as_dict()
    assert context["day_rows"] == by_day["rows"]
    assert context["channel_rows"] == by_channel["rows"]
    assert context["totals"] == by_day["totals"]
    assert context["day_rows"][0]["skipped_reasons"] == {"opted_out": 1, "quiet_hours": 1}
    # the cost chart's bars: each channel's cost per day, as the per-channel reports say
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    expected = {}
    for channel in ("email", "sms", "push", "inapp"):
        found = {
            r.key: r.cost_micros / 1_000_000
            for r in analytics_report(**scope, channel=channel, group_by="day").rows
        }
        expected[channel] = [found.get(day, 0.0) for day in days]
    assert context["cost_by_channel"] == expected
    assert expected["push"] == [7e-06, 0.0, 0.0]
    assert expected["sms"] == [0.0, 0.0158, 0.0]


def test_only_staff_may_see_it() -> None:
    client = Client()
    anonymous = client.get("/admin/analytics/")
    client.force_login(User.objects.create_user("someone", password="pw"))
    not_staff = client.get("/admin/analytics/")

    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/admin/analytics/"
    assert not_staff.status_code == 302


def test_a_templates_page_shows_its_ab_test_without_promote_buttons(staff: Client) -> None:
    from tests.apps.analytics.test_experiments import ab_template, textbook

    template = ab_template(("A", 50), ("B", 50))
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
    assert "{#" not in page  # no template comment shown as text
    assert "can_promote" not in page
    assert f"/admin/templates/template/{template.pk}/change/#template-experiments" in page
    (test,) = response.context["experiments"]
    assert [arm["sent"] for arm in test["labels"]] == [1000, 1000]


def test_the_overall_page_has_no_ab_block(staff: Client, welcome: Template) -> None:
    response = staff.get(f"/admin/analytics/?{RANGE}")

    assert 'id="experiment"' not in response.content.decode()
    assert response.context["experiments"] == []


def test_the_demo_seed_is_refused_without_debug_or_force() -> None:
    TemplateFactory(client=ApiClientFactory(name="demo"), key="welcome")

    with pytest.raises(CommandError, match="refused unless DEBUG"):
        call_command("seed_analytics_demo", "--days", "1")

    assert Rollup.objects.count() == 0


def test_the_demo_seed_runs_twice_leaving_the_hours_it_has(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    template = TemplateFactory(client=ApiClientFactory(name="demo"), key="welcome")
    now = dt.datetime(2026, 11, 2, 12, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(seed_analytics_demo, "timezone", SimpleNamespace(now=lambda: now))

    call_command("seed_analytics_demo", "--days", "1", "--force")
    first = Rollup.objects.count()
    call_command("seed_analytics_demo", "--days", "1", "--force")
    now += H  # an hour later: only the new hour is written
    call_command("seed_analytics_demo", "--days", "1", "--force")

    out = capsys.readouterr().out.splitlines()
    assert first > 0
    assert out[0] == f"{first} rollup rows for welcome ({template.pk})"
    assert out[1] == f"0 rollup rows for welcome ({template.pk})"
    new_hour = Rollup.objects.filter(hour=dt.datetime(2026, 11, 2, 13, tzinfo=dt.UTC)).count()
    assert new_hour > 0
    assert out[2] == f"{new_hour} rollup rows for welcome ({template.pk})"
    assert Rollup.objects.count() == first + new_hour
