"""A send-time test's `holdouts`: the distinct `best_time_holdout`s of the requests whose arms'
deliveries were sent in the range (apps.deliveries.best_time.send_time_holdouts), and no verdict
when there is more than one (their pooled arms mix splits: Simpson's paradox)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.analytics.experiments import experiment_summary
from apps.clients.models import ApiClient
from apps.deliveries.models import Delivery, DeliveryStatus, Notification
from apps.templates.models import Template
from tests.apps.analytics.test_experiments import END, START, seed
from tests.apps.analytics.test_experiments_send_time import DAY, arms_textbook
from tests.factories import ApiClientFactory, DeliveryFactory, NotificationFactory, TemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def welcome() -> Template:
    """The "welcome" template with the textbook arms on email (`arms_textbook`)."""
    template = TemplateFactory(key="welcome")
    arms_textbook(template)
    return template


def arms_few(template: Template, channel: str) -> None:
    """Both arms on `channel` in DAY's hour: 10 sent at once, 30 at their best time."""
    seed(template, "immediate", DAY, channel=channel, sent=10)
    seed(template, "best_time", DAY, channel=channel, sent=30)


def request(
    template: Template,
    holdout: int,
    *sends: tuple[str, str, dt.datetime | None],
    client: ApiClient | None = None,
) -> None:
    """A best-time request of `template` with this holdout (by its client unless `client`),
    accepted an hour before its first send (or START), and its deliveries: (channel, arm, sent
    at or None)."""
    notification = NotificationFactory(
        client=client or template.client,
        template=template,
        channels=sorted({channel for channel, _, _ in sends}),
        send_time="best_time",
        best_time_holdout=holdout,
    )
    accepted = min((at for _, _, at in sends if at), default=START) - dt.timedelta(hours=1)
    Notification.objects.filter(pk=notification.pk).update(created_at=accepted)  # auto_now_add
    for channel, arm, at in sends:
        DeliveryFactory(
            notification=notification,
            channel=channel,
            variant=arm,
            status=DeliveryStatus.SENT if at else DeliveryStatus.SCHEDULED,
            sent_at=at,
        )


def test_one_holdout_is_listed_and_the_verdict_given(welcome: Template) -> None:
    # Given the textbook arms on email, counted from two requests with a 20% holdout
    template = welcome
    request(template, 20, ("email", "immediate", DAY), ("email", "best_time", DAY))
    request(template, 20, ("email", "best_time", DAY + dt.timedelta(hours=5)))

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert test["holdouts"] == [20]
    assert test["ready"] is True
    assert test["comparisons"][0]["open"]["verdict"] == "b"


def test_two_holdouts_in_the_range_give_no_verdict(welcome: Template) -> None:
    # Given the same arms, counted from a 20% and a 50% holdout's requests
    template = welcome
    request(template, 50, ("email", "immediate", DAY), ("email", "best_time", DAY))
    request(template, 20, ("email", "best_time", DAY + dt.timedelta(hours=5)))

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    # Then both are listed, and no verdict: not ready, whatever the sample
    assert test["holdouts"] == [20, 50]
    assert test["ready"] is False
    assert [arm["sent"] for arm in test["labels"]] == [1000, 1000]  # past the minimum sample
    (comparison,) = test["comparisons"]
    assert (comparison["open"]["verdict"], comparison["click"]["verdict"]) == (None, None)
    # ...the pooled difference is still shown, as the rows have it
    assert comparison["open"]["p_value"] == pytest.approx(0.00742, abs=5e-5)


def test_the_holdouts_are_those_of_the_range_the_channel_the_template_and_the_client(
    welcome: Template,
) -> None:
    # Given arms on email and on sms, and requests around them
    template = welcome
    arms_few(template, "sms")
    request(template, 20, ("email", "best_time", DAY), ("sms", "best_time", DAY))
    request(template, 70, ("sms", "immediate", DAY))  # sms only
    request(template, 10, ("email", "best_time", START - dt.timedelta(minutes=1)))  # before
    request(template, 60, ("email", "immediate", END + dt.timedelta(minutes=45)))  # after
    request(template, 30, ("email", "best_time", None))  # not sent yet
    request(template, 40, ("email", "", DAY))  # outside the arms (a later fallback's)
    request(TemplateFactory(key="other"), 80, ("email", "best_time", DAY))  # another template
    other = ApiClientFactory()
    request(template, 90, ("email", "immediate", DAY), client=other)  # another client's
    ops = ApiClient.objects.create(name="ops", is_ops=True)

    mine = experiment_summary(client=template.client, template=template, start=START, end=END)
    every = experiment_summary(client=ops, template=template, start=START, end=END)
    # `end` in the middle of an hour: that hour's rollup row counts, and so its sends
    longer = experiment_summary(
        client=template.client,
        template=template,
        start=START,
        end=END + dt.timedelta(minutes=30),
        channel="email",
    )

    assert [(t["channel"], t["holdouts"]) for t in mine] == [("email", [20]), ("sms", [20, 70])]
    assert [(t["channel"], t["holdouts"]) for t in every] == [
        ("email", [20, 90]),
        ("sms", [20, 70]),
    ]
    assert [(t["channel"], t["holdouts"]) for t in longer] == [("email", [20, 60])]


def test_the_holdouts_are_one_query_for_every_channel_none_without_arms() -> None:
    # Given arms on three channels, each from requests with two holdouts
    template = TemplateFactory(key="welcome")
    for channel in ("email", "sms", "push"):
        arms_few(template, channel)
        request(template, 20, (channel, "immediate", DAY))
        request(template, 50, (channel, "best_time", DAY))

    with CaptureQueriesContext(connection) as queries:
        summary = experiment_summary(
            client=template.client, template=template, start=START, end=END
        )

    assert [(t["channel"], t["holdouts"], t["ready"]) for t in summary] == [
        ("email", [20, 50], False),
        ("push", [20, 50], False),
        ("sms", [20, 50], False),
    ]
    table = Delivery._meta.db_table
    assert len([q for q in queries.captured_queries if table in q["sql"]]) == 1
    # No arm in the range: the deliveries are not read at all
    later = END + dt.timedelta(days=30)
    with CaptureQueriesContext(connection) as queries:
        nothing = experiment_summary(
            client=template.client, template=template, start=END, end=later
        )
    assert nothing == []
    assert [q for q in queries.captured_queries if table in q["sql"]] == []
