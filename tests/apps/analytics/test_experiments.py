"""experiment_summary against hand-computed values from seeded Rollup rows."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import override_settings

from apps.analytics.api.serializers import AnalyticsExperimentSerializer
from apps.analytics.experiment_services import experiment_promote
from apps.analytics.experiments import experiment_summary
from apps.analytics.models import Rollup
from apps.clients.models import ApiClient
from apps.deliveries.models import VariantAssignment
from apps.templates.models import Template
from apps.templates.services import template_variant_promote, template_version_create
from tests.factories import ApiClientFactory, RecipientFactory, TemplateFactory

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 8, tzinfo=dt.UTC)


def variants(*labels: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        *(
            {"channel": "email", "label": label, "weight": weight, "subject": label, "body": "b"}
            for label, weight in labels
        ),
        {"channel": "sms", "body": "not in a test"},
    ]


def ab_template(*labels: tuple[str, int]) -> Template:
    """A template whose test started long before START (its version backdated)."""
    template = TemplateFactory(key="welcome", variants=variants(*labels))
    template.versions.update(created_at=START - dt.timedelta(days=30))
    return template


def seed(template: Template, variant: str, hour: dt.datetime, **counts: int) -> None:
    Rollup.objects.create(
        hour=hour,
        client=template.client,
        template=template,
        channel=counts.pop("channel", "email"),  # type: ignore[arg-type]
        variant=variant,
        provider=counts.pop("provider", "sendgrid"),  # type: ignore[arg-type]
        **counts,
    )


def textbook(template: Template) -> None:
    """A: 1000 sent, 200 opened, 50 clicked; B: 1000 sent, 250 opened, 52 clicked; each split
    over hours and providers, with rows the summary must leave out around them."""
    day = START + dt.timedelta(days=2)
    seed(template, "A", day, sent=600, delivered=590, opened=120, clicked=30)
    seed(template, "A", day + dt.timedelta(hours=5), sent=400, delivered=395, opened=80, clicked=20)
    seed(template, "B", day, sent=500, delivered=495, opened=100, clicked=26)
    seed(template, "B", day, provider="ses", sent=500, delivered=490, opened=150, clicked=26)
    # Left out: before the range, at its end (hours in [start, end)), outside the test, another
    # channel, another client's.
    seed(template, "A", START - dt.timedelta(hours=1), sent=999, opened=999)
    seed(template, "B", END, sent=999, opened=999)
    seed(template, "", day, sent=999, opened=999)
    seed(template, "A", day, channel="sms", sent=999, opened=999)
    other = ApiClientFactory()
    Rollup.objects.create(
        hour=day, client=other, template=template, channel="email", variant="A", sent=999
    )


@pytest.mark.django_db
def test_two_labels_hand_computed_two_proportion_test_and_verdicts() -> None:
    template = ab_template(("A", 50), ("B", 50))
    textbook(template)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert test["labels"] == [
        {"label": "A", "weight": 50, "sent": 1000, "delivered": 985, "opened": 200,
         "clicked": 50, "open_rate": 0.2, "click_rate": 0.05},
        {"label": "B", "weight": 50, "sent": 1000, "delivered": 985, "opened": 250,
         "clicked": 52, "open_rate": 0.25, "click_rate": 0.052},
    ]  # fmt: skip
    assert {k: test[k] for k in ("kind", "channel", "locale", "test_key", "version", "ready")} == {
        "kind": "copy",
        "channel": "email",
        "locale": "en",
        "test_key": "welcome:email",
        "version": 1,
        "ready": True,
    }
    assert (test["start"], test["end"], test["minimum_sample"]) == (
        "2026-11-01T00:00:00+00:00",
        "2026-11-08T00:00:00+00:00",
        100,
    )
    (comparison,) = test["comparisons"]
    assert (comparison["label"], comparison["against"]) == ("B", "A")
    opens = comparison["open"]
    # By hand: pooled p = 450/2000 = 0.225; SE = sqrt(0.225 * 0.775 * (1/1000 + 1/1000))
    # = sqrt(0.00034875) = 0.0186748; z = 0.05 / 0.0186748 = 2.6774; two-sided
    # p = 2 * (1 - Phi(2.6774)) = 2 * (1 - 0.99629) = 0.00742 (normal table).
    # 95% interval: SE' = sqrt(0.2*0.8/1000 + 0.25*0.75/1000) = sqrt(0.0003475) = 0.0186414,
    # 0.05 -+ 1.959964 * 0.0186414 = [0.013464, 0.086536].
    assert opens["rate_a"] == 0.2
    assert opens["rate_b"] == 0.25
    assert opens["difference"] == pytest.approx(0.05, abs=1e-12)
    assert opens["z"] == pytest.approx(2.6774, abs=1e-4)
    assert opens["p_value"] == pytest.approx(0.00742, abs=5e-5)
    assert opens["low"] == pytest.approx(0.013464, abs=1e-6)
    assert opens["high"] == pytest.approx(0.086536, abs=1e-6)
    assert opens["verdict"] == "b"
    clicks = comparison["click"]
    # 50/1000 vs 52/1000: pooled 0.051, SE = sqrt(0.051 * 0.949 * 0.002) = 0.0098385,
    # z = 0.002 / 0.0098385 = 0.2033, p = 0.839: no significant difference.
    assert clicks["z"] == pytest.approx(0.2033, abs=1e-4)
    assert clicks["p_value"] == pytest.approx(0.839, abs=1e-3)
    assert clicks["verdict"] == "none"
    # The API's serializer renders the summary whole: no field left out, none changed
    rendered = AnalyticsExperimentSerializer([test], many=True).data
    assert json.loads(json.dumps(rendered)) == [test]


@pytest.mark.django_db
def test_no_verdict_until_every_label_reaches_the_minimum_sample() -> None:
    template = ab_template(("A", 1), ("B", 1), ("C", 1))
    textbook(template)
    seed(template, "C", START, sent=99, opened=40, clicked=1)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert [(arm["label"], arm["sent"]) for arm in test["labels"]] == [
        ("A", 1000),
        ("B", 1000),
        ("C", 99),
    ]
    assert test["ready"] is False
    b, c = test["comparisons"]
    assert (b["label"], c["label"], c["against"]) == ("B", "C", "A")
    assert b["open"]["p_value"] == pytest.approx(0.00742, abs=5e-5)  # shown, but no verdict
    assert [b["open"]["verdict"], b["click"]["verdict"], c["open"]["verdict"]] == [None] * 3

    with override_settings(ANALYTICS_AB_MIN_SAMPLE=99):
        (test,) = experiment_summary(
            client=template.client, template=template, start=START, end=END
        )
    assert test["ready"] is True
    assert test["comparisons"][1]["open"]["verdict"] == "b"  # 40/99 against 200/1000


@pytest.mark.django_db
def test_a_label_with_nothing_sent_has_no_rates_or_comparison() -> None:
    template = ab_template(("A", 1), ("B", 1))
    seed(template, "A", START, sent=10, opened=3)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert test["labels"][1] == {
        "label": "B", "weight": 1, "sent": 0, "delivered": 0, "opened": 0, "clicked": 0,
        "open_rate": None, "click_rate": None,
    }  # fmt: skip
    assert test["comparisons"] == [{"label": "B", "against": "A", "open": None, "click": None}]


@pytest.mark.django_db
def test_ops_sees_every_client_a_channel_filter_and_no_test_no_summary() -> None:
    template = ab_template(("A", 1), ("B", 1))
    textbook(template)
    ops = ApiClient.objects.create(name="ops", is_ops=True)

    (test,) = experiment_summary(client=ops, template=template, start=START, end=END)

    assert test["labels"][0]["sent"] == 1999  # another client's 999 for A too
    assert (
        experiment_summary(
            client=template.client, template=template, start=START, end=END, channel="sms"
        )
        == []
    )
    template_variant_promote(template=template, channel="email", locale="en", label="B", actor="x")
    assert experiment_summary(client=template.client, template=template, start=START, end=END) == []


def set_created(template: Template, number: int, at: dt.datetime) -> None:
    template.versions.filter(number=number).update(created_at=at)


@pytest.mark.django_db
def test_counting_starts_at_the_hour_the_current_label_set_was_introduced() -> None:
    """v1 (A, B) long before; v2 (A, B, C) created 3 days and 30 minutes into the range; v3
    only reweights v2 (the same labels). The counts start at v2's hour: the earlier A/B test's
    rows stay out, a weights-only edit does not restart the count."""
    template = ab_template(("A", 1), ("B", 1))
    introduced = START + dt.timedelta(days=3, minutes=30)
    template_version_create(template=template, variants=variants(("A", 1), ("B", 1), ("C", 1)))
    set_created(template, 2, introduced)
    template_version_create(template=template, variants=variants(("A", 2), ("B", 1), ("C", 1)))
    set_created(template, 3, introduced + dt.timedelta(days=1))
    seed(template, "A", START + dt.timedelta(days=1), sent=999, opened=999)  # the old test
    seed(template, "B", introduced - dt.timedelta(minutes=90), sent=999)  # the hour before
    seed(template, "A", introduced - dt.timedelta(minutes=30), sent=10, opened=2)  # its hour
    seed(template, "C", introduced + dt.timedelta(hours=2), sent=5)
    seed(template, "B", introduced + dt.timedelta(days=2), sent=8)  # after the reweighting

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert test["start"] == "2026-11-04T00:00:00+00:00"
    assert test["version"] == 3
    assert [(arm["label"], arm["sent"], arm["opened"]) for arm in test["labels"]] == [
        ("A", 10, 2),
        ("B", 8, 0),
        ("C", 5, 0),
    ]
    # A later `start` than the label set's is kept as given.
    late = START + dt.timedelta(days=5)
    (test,) = experiment_summary(client=template.client, template=template, start=late, end=END)
    assert test["start"] == late.isoformat()
    assert [arm["sent"] for arm in test["labels"]] == [0, 8, 0]


@pytest.mark.django_db
def test_a_label_weighted_0_does_not_hold_the_verdict_back() -> None:
    template = ab_template(("A", 1), ("B", 1), ("C", 0))
    textbook(template)

    (test,) = experiment_summary(client=template.client, template=template, start=START, end=END)

    assert [(arm["label"], arm["sent"]) for arm in test["labels"]] == [
        ("A", 1000),
        ("B", 1000),
        ("C", 0),
    ]
    assert test["ready"] is True
    b, c = test["comparisons"]
    assert b["open"]["verdict"] == "b"
    assert c["open"] is None


@pytest.mark.django_db
def test_a_lone_labelled_variant_is_not_a_test() -> None:
    template = ab_template(("A", 1))
    seed(template, "A", START, sent=10)

    assert experiment_summary(client=template.client, template=template, start=START, end=END) == []


@pytest.mark.django_db
def test_promote_forgets_the_channels_assignments_once_no_locale_of_it_runs_a_test() -> None:
    template = TemplateFactory(
        key="welcome",
        variants=[
            *variants(("A", 1), ("B", 1)),
            {"channel": "email", "locale": "de", "label": "A", "subject": "a", "body": "b"},
            {"channel": "email", "locale": "de", "label": "B", "subject": "b", "body": "b"},
        ],
    )
    people = RecipientFactory.create_batch(2, client=template.client)
    for person, channel in zip(people, ("email", "sms"), strict=True):
        VariantAssignment.objects.create(
            template=template, channel=channel, recipient=person, label="A"
        )

    experiment_promote(template=template, channel="email", locale="en", label="B", actor="x")
    kept = sorted(VariantAssignment.objects.values_list("channel", flat=True))
    experiment_promote(template=template, channel="email", locale="de", label="A", actor="x")

    assert kept == ["email", "sms"]  # email/de still runs its test: the email rows stay
    assert list(VariantAssignment.objects.values_list("channel", flat=True)) == ["sms"]
    assert template.versions.count() == 3
