"""GET /api/v1/analytics?group_by=variant&template=...: the rows per label and the template's A/B
tests (experiment_summary) in `experiment`, scoped like the rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.analytics.models import Rollup
from tests.apps.analytics.test_api import api
from tests.apps.analytics.test_experiments import START, textbook, variants
from tests.factories import ApiClientFactory, TemplateFactory

pytestmark = [pytest.mark.django_db]


def backdated(template: Any) -> Any:
    """The test began before the range (experiment_summary counts from its label set's start)."""
    template.versions.update(created_at=START - dt.timedelta(days=30))
    return template


QUERY = "/api/v1/analytics?from=2026-11-01&to=2026-11-08&group_by=variant&template=welcome"


def test_variant_groups_of_a_template_carry_its_ab_test() -> None:
    browser, client = api(name="acme")
    template = backdated(
        TemplateFactory(client=client, key="welcome", variants=variants(("A", 50), ("B", 50)))
    )
    textbook(template)

    response = browser.get(QUERY)

    assert response.status_code == 200, response.content
    body = response.json()
    (test,) = body["experiment"]
    assert [(arm["label"], arm["sent"], arm["opened"]) for arm in test["labels"]] == [
        ("A", 1000, 200),
        ("B", 1000, 250),
    ]
    (comparison,) = test["comparisons"]
    assert comparison["open"]["verdict"] == "b"
    assert comparison["open"]["p_value"] == pytest.approx(0.00742, abs=5e-5)


def test_other_groupings_and_unknown_templates_have_no_experiment() -> None:
    browser, client = api(name="acme")
    template = backdated(
        TemplateFactory(client=client, key="welcome", variants=variants(("A", 50), ("B", 50)))
    )
    textbook(template)

    assert (
        browser.get(QUERY.replace("group_by=variant", "group_by=day")).json()["experiment"] is None
    )
    assert browser.get(QUERY.replace("welcome", "nope")).json()["experiment"] is None


def test_a_client_never_sees_another_clients_test_or_counts() -> None:
    # Given acme's template `welcome` in an A/B test, and another client with its own `welcome`
    _, acme = api(name="acme")
    textbook(
        backdated(
            TemplateFactory(client=acme, key="welcome", variants=variants(("A", 1), ("B", 1)))
        )
    )
    browser, _ = api(name="other")

    # When the other client asks about `welcome`
    body = browser.get(QUERY).json()

    # Then it sees no template of its own by that key: nothing, not acme's counts
    assert body["experiment"] is None
    assert body["totals"]["counts"]["sent"] == 0


def test_an_ops_key_sees_the_test_when_one_template_has_the_key() -> None:
    _, acme = api(name="acme")
    template = backdated(
        TemplateFactory(client=acme, key="welcome", variants=variants(("A", 1), ("B", 1)))
    )
    textbook(template)
    ops, _ = api(is_ops=True, name="ops")

    (test,) = ops.get(QUERY).json()["experiment"]
    # Every client's counts for that template (textbook() seeds 999 more of A from another
    # client's row on the same template), as the rows show them
    assert [arm["sent"] for arm in test["labels"]] == [1999, 1000]
    assert Rollup.objects.filter(template=template).exclude(client=acme).exists()

    # ...and none when two clients share the key, unless `client=` picks one
    TemplateFactory(client=ApiClientFactory(name="beta"), key="welcome")
    assert ops.get(QUERY).json()["experiment"] is None
    (test,) = ops.get(QUERY + "&client=acme").json()["experiment"]
    assert [arm["sent"] for arm in test["labels"]] == [1000, 1000]
