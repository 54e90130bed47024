"""GET /api/v1/analytics?group_by=variant&template=...: the rows per label and the template's A/B
tests (experiment_summary) in `experiment`, scoped like the rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.analytics.models import Rollup
from tests.apps.analytics.test_api import api
from tests.apps.analytics.test_experiments import START, seed, textbook, variants
from tests.apps.analytics.test_experiments_holdouts import request
from tests.apps.analytics.test_experiments_send_time import DAY, arms_textbook
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


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable` as a null alternative, component
    references into `$defs`."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if k != "nullable"}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


def validator(component: str = "AnalyticsReport") -> jsonschema.Draft202012Validator:
    """A component of the served OpenAPI schema (by default the 200 answer of GET
    /api/v1/analytics)."""
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/$defs/{component}", "$defs": as_json_schema(components["schemas"])}
    )


def test_a_send_time_test_follows_the_copy_tests_as_documented() -> None:
    # Given acme's `welcome`: a copy test on sms, and the arms of a send-time test on email
    browser, client = api(name="acme")
    template = backdated(
        TemplateFactory(
            client=client,
            key="welcome",
            variants=[
                {"channel": "email", "subject": "s", "body": "b"},
                {"channel": "sms", "label": "A", "weight": 3, "body": "a"},
                {"channel": "sms", "label": "B", "weight": 1, "body": "b"},
            ],
        )
    )
    seed(template, "A", DAY, channel="sms", sent=300, opened=30)
    seed(template, "B", DAY, channel="sms", sent=100, opened=20)
    arms_textbook(template)
    request(template, 20, ("email", "immediate", DAY), ("email", "best_time", DAY))

    response = browser.get(QUERY)

    # Then both tests, the copy test first, each with its kind
    assert response.status_code == 200, response.content
    body = response.json()
    copy, timing = body["experiment"]
    assert (copy["kind"], copy["channel"], copy["locale"], copy["version"]) == (
        "copy",
        "sms",
        "en",
        1,
    )
    assert [(a["label"], a["weight"], a["sent"]) for a in copy["labels"]] == [
        ("A", 3, 300),
        ("B", 1, 100),
    ]
    assert {k: timing[k] for k in ("kind", "channel", "locale", "test_key", "version")} == {
        "kind": "send_time",
        "channel": "email",
        "locale": None,
        "test_key": "best_time:welcome",
        "version": None,
    }
    assert (copy["holdouts"], timing["holdouts"]) == (None, [20])
    assert timing["start"] == "2026-11-01T00:00:00+00:00"
    assert [(a["label"], a["weight"], a["sent"], a["opened"]) for a in timing["labels"]] == [
        ("immediate", None, 1000, 200),
        ("best_time", None, 1000, 250),
    ]
    (comparison,) = timing["comparisons"]
    assert (comparison["label"], comparison["against"]) == ("best_time", "immediate")
    assert comparison["open"]["p_value"] == pytest.approx(0.00742, abs=5e-5)
    assert comparison["open"]["verdict"] == "b"
    # ...as the schema documents it (kind, the nullable locale, version, weight)
    errors = [e.message for e in validator().iter_errors(body)]
    assert errors == []
    # ...and a channel's tests only with `channel=`
    only = browser.get(QUERY + "&channel=email").json()["experiment"]
    assert [(t["kind"], t["channel"]) for t in only] == [("send_time", "email")]


def test_the_schema_check_can_fail() -> None:
    """The check above is no rubber stamp: a test without its kind, with another kind, a string
    weight, a holdout past 100 or as a string, are refused."""
    experiment = validator("AnalyticsExperiment")
    test = {
        "kind": "send_time", "channel": "email", "locale": None, "test_key": "best_time:w",
        "version": None, "start": "2026-11-01T00:00:00+00:00", "end": "2026-11-08T00:00:00+00:00",
        "minimum_sample": 100, "holdouts": [20, 50], "ready": False, "comparisons": [],
        "labels": [{"label": "immediate", "weight": None, "sent": 0, "delivered": 0, "opened": 0,
                    "clicked": 0, "open_rate": None, "click_rate": None}],
    }  # fmt: skip

    def errors(value: dict[str, Any]) -> list[str]:
        return [e.message for e in experiment.iter_errors(value)]

    assert errors(test) == []
    assert errors({k: v for k, v in test.items() if k != "kind"}) == [
        "'kind' is a required property"
    ]
    assert errors({**test, "kind": "timing"}) != []
    assert errors({**test, "labels": [{**test["labels"][0], "weight": "1"}]}) != []
    assert errors({**test, "version": "1"}) != []
    assert errors({**test, "holdouts": None}) == []  # a copy test's
    assert errors({**test, "holdouts": [101]}) != []
    assert errors({**test, "holdouts": ["20"]}) != []
