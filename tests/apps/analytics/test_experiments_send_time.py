"""experiment_summary's send-time tests (`best_time_holdout`: each delivery's arm, `best_time` or
`immediate`, in Delivery.variant) against hand-computed values from seeded Rollup rows, beside
copy tests, scoped by client."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.analytics.api.serializers import AnalyticsExperimentSerializer
from apps.analytics.experiments import experiment_summary
from apps.analytics.models import Rollup
from apps.analytics.services import rollups_fold_pending
from apps.clients.models import ApiClient
from apps.deliveries.lifecycle import deliveries_claim, deliveries_sent, delivery_report
from apps.deliveries.models import Delivery
from apps.recipients.models import Recipient
from apps.templates.models import Template
from notifier.providers.base import SendResult
from tests.apps.analytics.test_experiments import END, START, ab_template, seed
from tests.factories import ApiClientFactory, TemplateFactory, TemplateVariantFactory
from tests.support.best_time import post

pytestmark = pytest.mark.django_db
DAY = START + dt.timedelta(days=2)


def arms_textbook(template: Template, channel: str = "email") -> None:
    """immediate: 1000 sent, 200 opened, 50 clicked; best_time: 1000 sent, 250 opened, 52
    clicked (the copy tests' textbook numbers), split over hours and providers, with rows the
    summary must leave out around them."""
    seed(
        template, "immediate", DAY, channel=channel, sent=600, delivered=590, opened=120, clicked=30
    )
    seed(
        template,
        "immediate",
        DAY + dt.timedelta(hours=5),
        channel=channel,
        sent=400,
        delivered=395,
        opened=80,
        clicked=20,
    )
    seed(
        template, "best_time", DAY, channel=channel, sent=500, delivered=495, opened=100, clicked=26
    )
    seed(
        template,
        "best_time",
        DAY,
        channel=channel,
        provider="ses",
        sent=500,
        delivered=490,
        opened=150,
        clicked=26,
    )
    # Left out: before the range, at its end (hours in [start, end)), another client's
    seed(template, "immediate", START - dt.timedelta(hours=1), channel=channel, sent=999)
    seed(template, "best_time", END, channel=channel, sent=999, opened=999)
    Rollup.objects.create(
        hour=DAY, client=ApiClientFactory(), template=template, channel=channel,
        variant="best_time", sent=999,
    )  # fmt: skip


def test_the_arms_hand_computed_two_proportion_test_and_verdicts() -> None:
    # Given a template without a copy test, its send-time arms' rows, and rows outside any arm
    template = TemplateFactory(key="welcome")
    arms_textbook(template)
    seed(template, "", DAY, sent=999, opened=999)  # outside a test
    seed(template, "A", DAY, sent=999, opened=999)  # an ended copy test's label

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert {k: v for k, v in test.items() if k not in ("labels", "comparisons")} == {
        "kind": "send_time",
        "channel": "email",
        "locale": None,
        "test_key": "best_time:welcome",
        "version": None,
        "start": "2026-11-01T00:00:00+00:00",
        "end": "2026-11-08T00:00:00+00:00",
        "minimum_sample": 100,
        "holdouts": [],  # no request on record: the rows were seeded
        "ready": True,
    }
    assert test["labels"] == [
        {"label": "immediate", "weight": None, "sent": 1000, "delivered": 985, "opened": 200,
         "clicked": 50, "open_rate": 0.2, "click_rate": 0.05},
        {"label": "best_time", "weight": None, "sent": 1000, "delivered": 985, "opened": 250,
         "clicked": 52, "open_rate": 0.25, "click_rate": 0.052},
    ]  # fmt: skip
    (comparison,) = test["comparisons"]
    assert (comparison["label"], comparison["against"]) == ("best_time", "immediate")
    opens = comparison["open"]
    # By hand (as for copy tests): pooled p = 450/2000 = 0.225; SE = sqrt(0.225 * 0.775 *
    # 0.002) = 0.0186748; z = 0.05 / 0.0186748 = 2.6774; p = 2 * (1 - Phi(2.6774)) = 0.00742.
    # 95% interval: SE' = sqrt(0.2*0.8/1000 + 0.25*0.75/1000) = 0.0186414,
    # 0.05 -+ 1.959964 * 0.0186414 = [0.013464, 0.086536].
    assert (opens["rate_a"], opens["rate_b"]) == (0.2, 0.25)
    assert opens["difference"] == pytest.approx(0.05, abs=1e-12)
    assert opens["z"] == pytest.approx(2.6774, abs=1e-4)
    assert opens["p_value"] == pytest.approx(0.00742, abs=5e-5)
    assert opens["low"] == pytest.approx(0.013464, abs=1e-6)
    assert opens["high"] == pytest.approx(0.086536, abs=1e-6)
    assert opens["verdict"] == "b"  # sending at the best time won on opens
    clicks = comparison["click"]
    # 50/1000 vs 52/1000: z = 0.002 / sqrt(0.051 * 0.949 * 0.002) = 0.2033, p = 0.839.
    assert clicks["z"] == pytest.approx(0.2033, abs=1e-4)
    assert clicks["p_value"] == pytest.approx(0.839, abs=1e-3)
    assert clicks["verdict"] == "none"
    # The API's serializer renders the summary whole: no field left out, none changed
    rendered = AnalyticsExperimentSerializer([test], many=True).data
    assert json.loads(json.dumps(rendered)) == [test]


def test_no_verdict_until_both_arms_reach_the_minimum_sample() -> None:
    # Given 1000 sent at the best time, 99 held out
    template = TemplateFactory(key="welcome")
    seed(template, "best_time", DAY, sent=1000, opened=200, clicked=50)
    seed(template, "immediate", DAY, sent=99, opened=40, clicked=1)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert [(arm["label"], arm["sent"]) for arm in test["labels"]] == [
        ("immediate", 99),
        ("best_time", 1000),
    ]
    assert test["ready"] is False
    (comparison,) = test["comparisons"]
    # 200/1000 against 40/99: shown, but no verdict
    assert comparison["open"]["difference"] == pytest.approx(0.2 - 40 / 99, abs=1e-12)
    assert comparison["open"]["p_value"] < 0.05
    assert (comparison["open"]["verdict"], comparison["click"]["verdict"]) == (None, None)

    with override_settings(ANALYTICS_AB_MIN_SAMPLE=99):
        (test,) = experiment_summary(
            client=template.client, template=template, start=START, end=END
        )
    assert test["ready"] is True
    assert test["minimum_sample"] == 99
    assert test["comparisons"][0]["open"]["verdict"] == "a"  # the held-out arm opened more


def test_an_arm_with_nothing_sent_has_no_rates_or_comparison() -> None:
    # Given opens in the range of held-out deliveries sent before it, and best_time sends
    template = TemplateFactory(key="welcome")
    seed(template, "immediate", DAY, channel="sms", opened=3)
    seed(template, "best_time", DAY, channel="sms", sent=10, delivered=9)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert (test["kind"], test["channel"], test["ready"]) == ("send_time", "sms", False)
    assert test["labels"][0] == {
        "label": "immediate", "weight": None, "sent": 0, "delivered": 0, "opened": 3,
        "clicked": 0, "open_rate": None, "click_rate": None,
    }  # fmt: skip
    assert test["comparisons"] == [
        {"label": "best_time", "against": "immediate", "open": None, "click": None}
    ]


def test_a_channel_one_of_whose_arms_has_nothing_at_all_has_no_send_time_test() -> None:
    # Given a holdout of 0 on sms (every delivery at the best time), of 100 on push (all held
    # out), both arms on email, and on inapp an arm with a row of nothing but failures
    template = TemplateFactory(key="welcome")
    seed(template, "best_time", DAY, channel="sms", sent=500, opened=50)
    seed(template, "immediate", DAY, channel="push", sent=500, opened=50)
    seed(template, "immediate", DAY, channel="email", sent=1)
    seed(template, "best_time", DAY, channel="email", opened=1)  # sent before the range
    seed(template, "immediate", DAY, channel="inapp", sent=10)
    seed(template, "best_time", DAY, channel="inapp", failed=10)

    summary = experiment_summary(client=template.client, template=template, start=START, end=END)

    # Then only email has a test: one arm is nothing to compare
    assert [(t["kind"], t["channel"]) for t in summary] == [("send_time", "email")]
    assert experiment_summary(
        client=template.client, template=template, start=START, end=END, channel="sms"
    ) == []  # fmt: skip


def test_a_copy_test_and_send_time_tests_side_by_side_copy_tests_first() -> None:
    # Given a copy test on sms (email untested), send-time rows on email, and on push
    template = TemplateFactory(
        key="welcome",
        variants=[
            {"channel": "email", "subject": "s", "body": "b"},
            {"channel": "sms", "label": "A", "weight": 1, "body": "a"},
            {"channel": "sms", "label": "B", "weight": 1, "body": "b"},
        ],
    )
    template.versions.update(created_at=START - dt.timedelta(days=30))
    seed(template, "A", DAY, channel="sms", sent=300, opened=30)
    seed(template, "B", DAY, channel="sms", sent=200, opened=40)
    arms_textbook(template, channel="email")
    seed(template, "immediate", DAY, channel="push", sent=5)
    seed(template, "best_time", DAY, channel="push", sent=2)

    summary = experiment_summary(client=template.client, template=template, start=START, end=END)

    # Then the copy test (sms) comes first, the send-time tests after it in channel order
    assert [(t["kind"], t["channel"], t["test_key"]) for t in summary] == [
        ("copy", "sms", "welcome:sms"),
        ("send_time", "email", "best_time:welcome"),
        ("send_time", "push", "best_time:welcome"),
    ]
    copy, email, push = summary
    assert [(a["label"], a["weight"], a["sent"]) for a in copy["labels"]] == [
        ("A", 1, 300),
        ("B", 1, 200),
    ]
    assert (copy["locale"], copy["version"]) == ("en", 1)
    assert [a["sent"] for a in email["labels"]] == [1000, 1000]
    assert [a["sent"] for a in push["labels"]] == [5, 2]
    # One channel asked for: that channel's tests only
    only_email = experiment_summary(
        client=template.client, template=template, start=START, end=END, channel="email"
    )
    assert [(t["kind"], t["channel"]) for t in only_email] == [("send_time", "email")]
    assert (
        experiment_summary(
            client=template.client, template=template, start=START, end=END, channel="inapp"
        )
        == []
    )


def test_a_copy_test_and_a_send_time_test_on_one_channel_each_show_their_own_rows() -> None:
    # Given an email copy test A/B and, on email too, send-time arms in the range (best-time
    # requests accepted under an earlier version, before the test, and sent after it began)
    template = ab_template(("A", 50), ("B", 50))
    seed(template, "A", DAY, sent=10, opened=1)
    seed(template, "B", DAY, sent=20, opened=2)
    seed(template, "immediate", DAY, sent=300, opened=30)
    seed(template, "best_time", DAY, sent=400, opened=40)

    copy, timing = experiment_summary(
        client=template.client, template=template, start=START, end=END
    )

    # Then both tests on email, each with its own rows
    assert (copy["kind"], copy["channel"], timing["kind"], timing["channel"]) == (
        "copy",
        "email",
        "send_time",
        "email",
    )
    assert [(a["label"], a["sent"]) for a in copy["labels"]] == [("A", 10), ("B", 20)]
    assert [(a["label"], a["sent"]) for a in timing["labels"]] == [
        ("immediate", 300),
        ("best_time", 400),
    ]


def test_a_copy_label_written_past_the_validation_as_an_arm_counts_none_of_the_arms() -> None:
    # Given a copy test whose labels are A and "immediate", written straight to the database
    # (the API and the admin refuse the name: RESERVED_LABELS), and the arms' rows on email
    template = ab_template(("A", 1))
    TemplateVariantFactory(version=template.versions.get(), channel="email", label="immediate")
    seed(template, "A", DAY, sent=10)
    seed(template, "immediate", DAY, sent=300)
    seed(template, "best_time", DAY, sent=400)

    copy, timing = experiment_summary(
        client=template.client, template=template, start=START, end=END
    )

    # Then the arm's rows count in the send-time test only
    assert [(a["label"], a["sent"]) for a in copy["labels"]] == [("A", 10), ("immediate", 0)]
    assert [(a["label"], a["sent"]) for a in timing["labels"]] == [
        ("immediate", 300),
        ("best_time", 400),
    ]


def test_a_client_sees_its_own_arms_an_ops_key_everyones() -> None:
    # Given the template's client's arms on email (with a third client's 999 best_time), and
    # another client's rows under the same template: both arms on email, one on sms
    template = TemplateFactory(key="welcome")
    arms_textbook(template)
    other = ApiClientFactory()
    for channel, variant, sent in (
        ("email", "best_time", 5),
        ("email", "immediate", 4),
        ("sms", "immediate", 7),
    ):
        Rollup.objects.create(
            hour=DAY, client=other, template=template, channel=channel, variant=variant, sent=sent
        )
    ops = ApiClient.objects.create(name="ops", is_ops=True)

    mine = experiment_summary(client=template.client, template=template, start=START, end=END)
    theirs = experiment_summary(client=other, template=template, start=START, end=END)
    every = experiment_summary(client=ops, template=template, start=START, end=END)

    assert [(t["channel"], [a["sent"] for a in t["labels"]]) for t in mine] == [
        ("email", [1000, 1000])
    ]
    assert [(t["channel"], [a["sent"] for a in t["labels"]]) for t in theirs] == [
        ("email", [4, 5])
    ]  # sms: one arm, no test
    assert [(t["channel"], [a["sent"] for a in t["labels"]]) for t in every] == [
        ("email", [1000 + 4, 1000 + 999 + 5])
    ]


def test_a_holdout_request_sent_opened_and_folded_shows_both_arms(
    api: APIClient, demo: dict[str, Any]
) -> None:
    # Given 40 recipients without history sent one notification with a 50% holdout (every
    # delivery goes out at once: too little history), through the lifecycle's own moves
    client = demo["client"]
    ids = [f"h-{i}" for i in range(40)]
    Recipient.objects.bulk_create(
        [Recipient(client=client, external_id=e, email=f"{e}@example.com") for e in ids]
    )
    answer = post(api, recipients=ids, send_at="best_time", best_time_holdout=50)
    deliveries = list(Delivery.objects.filter(notification_id=answer["id"]).order_by("id"))
    assert deliveries_claim(delivery_ids=[str(d.id) for d in deliveries]) == {
        str(d.id) for d in deliveries
    }
    for d in deliveries:
        d.provider = "sendgrid"
    with transaction.atomic():
        deliveries_sent([(d, SendResult(f"sg-{d.pk}", 202)) for d in deliveries])
    opened = deliveries[::3]  # every third recipient opens, whichever their arm
    for d in opened:
        assert delivery_report(delivery=d, status="opened", detail="")
    sent = Counter(d.variant for d in deliveries)
    opens = Counter(d.variant for d in opened)
    assert set(sent) == {"immediate", "best_time"}

    # When the fold runs and the summary is read
    rollups_fold_pending()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    (test,) = experiment_summary(
        client=client, template=demo["template"], start=hour - dt.timedelta(days=1),
        end=hour + dt.timedelta(hours=1),
    )  # fmt: skip

    # Then one send-time test on email, each arm counted as the deliveries say
    assert (test["kind"], test["channel"], test["test_key"]) == (
        "send_time",
        "email",
        "best_time:order_shipped",
    )
    assert [(a["label"], a["sent"], a["opened"]) for a in test["labels"]] == [
        ("immediate", sent["immediate"], opens["immediate"]),
        ("best_time", sent["best_time"], opens["best_time"]),
    ]
    assert test["holdouts"] == [50]  # the request's, read from its deliveries
    assert test["ready"] is False  # 40 in all: below the minimum sample
    (comparison,) = test["comparisons"]
    assert comparison["open"]["rate_a"] == opens["immediate"] / sent["immediate"]
    assert comparison["open"]["verdict"] is None
