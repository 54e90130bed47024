"""A send-time test in the admin: its table on the template's change page and on the analytics
page (templates/admin/analytics/experiment_tests.html), titled as one, its weights "—", and no
Promote button (there is no copy to promote)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from apps.analytics.models import Rollup
from apps.templates.models import Template
from tests.admin.test_template_experiments_admin import ab_template
from tests.apps.analytics.test_experiments_holdouts import request
from tests.factories import TemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser() -> Client:
    """A superuser: may promote (the copy tests' buttons are shown to them)."""
    browser = Client()
    browser.force_login(User.objects.create_superuser("alice", "alice@example.com", "pw"))
    return browser


def yesterday() -> dt.datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


def seed(template: Template, channel: str, *rows: tuple[str, int, int]) -> None:
    for variant, sent, opened in rows:
        Rollup.objects.create(
            hour=yesterday(), client=template.client, template=template, channel=channel,
            variant=variant, provider="sendgrid", sent=sent, delivered=sent, opened=opened,
        )  # fmt: skip


def block(page: str, element_id: str) -> str:
    """The markup of the test's <div> (its tables hold no <div>)."""
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</div>", start)]


def cells(block_html: str, label: str) -> list[str]:
    row = block_html[block_html.index(f'class="experiment-label-{label}"') :]
    found = re.findall(r"<td>(.*?)</td>", row[: row.index("</tr>")], flags=re.DOTALL)
    return [html.unescape(cell.strip()) for cell in found]


def test_the_change_page_shows_the_send_time_table_beside_the_copy_test(
    superuser: Client,
) -> None:
    # Given an email copy test, and a send-time test's arms on sms
    template = ab_template()
    seed(template, "email", ("A", 50, 5), ("B", 50, 9))
    seed(template, "sms", ("immediate", 400, 80), ("best_time", 300, 90))

    page = superuser.get(f"/admin/templates/template/{template.pk}/change/").content.decode()

    # Then the send-time table, titled as one, after the copy test's
    copy = block(page, "experiment-email-en")
    timing = block(page, "experiment-send-time-sms")
    assert page.index('id="experiment-email-en"') < page.index('id="experiment-send-time-sms"')
    assert "<h3>Send time: best_time vs immediate (sms)</h3>" in timing
    assert cells(timing, "immediate") == [
        "immediate", "—", "400", "400", "80", "0", "0.2000", "0.0000", "control", "control",
    ]  # fmt: skip
    best = cells(timing, "best_time")
    assert best[:8] == ["best_time", "—", "300", "300", "90", "0", "0.3000", "0.0000"]
    # 90/300 against 80/400: difference 0.1, 95% interval [0.0350, 0.1650], z = 3.05
    assert best[8] == "Δ 0.1000 [0.0350, 0.1650], p=0.0023, verdict: b"
    assert len(best) == 10  # no Promote cell
    assert "No verdict until both arms" not in timing
    assert "Both arms have at least 100 sent: verdicts shown." in timing
    # ...with no Promote button: the copy test keeps its own
    assert "<form" not in timing
    assert "Promote" not in timing
    assert "Promote A" in copy
    assert "Promote B" in copy
    assert page.count('class="experiment-promote"') == 2


def test_a_send_time_test_alone_shows_on_both_pages_with_nothing_to_promote(
    superuser: Client,
) -> None:
    # Given a template with no copy test, its arms on email, 99 held out
    template = TemplateFactory(key="welcome")
    seed(template, "email", ("immediate", 99, 20), ("best_time", 1000, 150))
    day = yesterday().date()

    change = superuser.get(f"/admin/templates/template/{template.pk}/change/").content.decode()
    analytics = superuser.get(
        f"/admin/analytics/?start={day}&end={day}&template={template.pk}"
    ).content.decode()

    for page in (change, analytics):
        timing = block(page, "experiment-send-time-email")
        assert "Send time: best_time vs immediate (email)" in timing
        assert cells(timing, "immediate")[:3] == ["immediate", "—", "99"]
        assert cells(timing, "best_time")[8].endswith("verdict: not yet")
        assert "No verdict until both arms have at least 100 sent." in timing
        assert "Promote" not in page
        assert "<form" not in timing
        assert "{#" not in page  # no template comment shown as text
        assert "{%" not in page
    assert "A/B tests (last 30 days)" in change
    # The analytics page points to no Promote button that is not there
    assert 'id="experiment"' in analytics
    assert "#template-experiments" not in analytics


def test_a_send_time_test_over_two_holdouts_says_why_it_has_no_verdict(superuser: Client) -> None:
    # Given arms well past the minimum sample on email, from requests with 20% and 50% holdouts
    template = TemplateFactory(key="welcome")
    seed(template, "email", ("immediate", 400, 80), ("best_time", 300, 90))
    url = f"/admin/templates/template/{template.pk}/change/"
    request(template, 20, ("email", "immediate", yesterday()), ("email", "best_time", yesterday()))
    one = block(superuser.get(url).content.decode(), "experiment-send-time-email")
    request(template, 50, ("email", "best_time", yesterday() + dt.timedelta(minutes=5)))

    two = block(superuser.get(url).content.decode(), "experiment-send-time-email")

    # One holdout: the verdict, and the holdout named
    assert cells(one, "best_time")[8].endswith("verdict: b")
    assert "no weight is stored (this range's: 20%)." in one
    # Two: no verdict, and why
    assert cells(two, "best_time")[8].endswith("verdict: not yet")
    assert "No verdict: the requests in this range used different holdouts (20%, 50%)" in two
    assert "verdicts shown" not in two
    assert "this range's:" not in two
