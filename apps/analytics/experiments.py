"""A/B test results: per label of each test of a template, what the rollup counted, and each
challenger against the first label with the two-proportion test (notifier.experiments).

Two kinds of test: a copy test (sibling variants of a channel and locale of the template's
current version carrying labels) and a send-time test (`"send_at": "best_time"` with a
`best_time_holdout`: each delivery's variant is its arm, `best_time` or `immediate`,
apps/deliveries/best_time.py). `experiment_summary` returns a JSON-serialisable list, one dict
per test: the copy tests in channel then locale order, then a send-time test per channel whose
arms both counted something in the range, in channel order:

    {
      "kind": "copy",                   # or "send_time"
      "channel": "email", "locale": "en", "test_key": "welcome:email", "version": 3,
      "start": "2026-11-01T00:00:00+00:00",  # start, or the label set's first hour if later
      "end": "2026-12-01T00:00:00+00:00",
      "minimum_sample": 100,            # ANALYTICS_AB_MIN_SAMPLE
      "holdouts": null,                 # a send-time test's: [20], the requests' holdouts
      "ready": true,                    # every label weighted > 0 has minimum_sample sent
                                        # (and a send-time test at most one holdout)
      "labels": [                       # in label order; the first is the control
        {"label": "A", "weight": 70, "sent": 1000, "delivered": 990, "opened": 200,
         "clicked": 50, "open_rate": 0.2, "click_rate": 0.05},
        ...
      ],
      "comparisons": [                  # each other label against the first
        {"label": "B", "against": "A",
         "open": {"rate_a": 0.2, "rate_b": 0.25, "difference": 0.05, "z": 2.69,
                  "p_value": 0.0071, "low": 0.0136, "high": 0.0864, "verdict": "b"},
         "click": {...}},
        ...
      ]
    }

A send-time test has the same shape with `"kind": "send_time"`, `test_key` `best_time:<template
key>` (the holdout's assignment key), `locale`, `version` and each label's `weight` null (the
holdout's share is per request, not stored), `start` the range's start, labels `immediate` (the
control) then `best_time`, `holdouts` the distinct `best_time_holdout`s of the template's
requests whose arms' deliveries were sent in the range (ascending; `[]` when none is on record
any more: RETENTION_DAYS), and `ready` once both arms have `minimum_sample` sent and at most one
holdout is listed: requests with different holdouts split their recipients differently, and
their pooled arms can show a difference that none of them has (Simpson's paradox), so such a
test gets no verdict. A channel one of whose arms counted nothing at all in the range (nothing
sent, delivered, opened or clicked: a holdout of 0 or 100 puts everyone in the other arm) has
no send-time test: one arm is nothing to compare, and would never reach a verdict. The two
never share counts: a copy label may not be named like an arm
(apps/templates/validation.py RESERVED_LABELS), and a copy test's counts leave the arms out.

Rates are per sent delivery (opened / sent, clicked / sent; null before anything was sent).
`difference` is the challenger's rate minus the control's, `low`..`high` its 95% interval, and
`verdict` "a" (the control wins), "b" (the challenger wins), "none" (no significant difference
at 5%) or null while the test is not `ready`. A copy test's counting starts no earlier than the
UTC hour in which the test's current label set was introduced (the oldest of the unbroken run of
versions with these labels for that channel and locale; a weights-only edit keeps the run
going), so an earlier test's counts under the same labels stay out (but for what it sent in that
very hour). A comparison is null when either arm has nothing sent. The rollup counts by channel
and label, not locale: two locales of one channel running tests with the same labels show the
same counts. A counter counts first events in the range's hours, so an open in the range of a
delivery sent before it may count where its send did not: successes are capped at `sent` for the
test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import QuerySet, Sum

from apps.analytics.models import Rollup
from apps.clients.models import ApiClient
from apps.deliveries.best_time import (
    BEST_TIME,
    IMMEDIATE,
    SEND_TIME_ARMS,
    send_time_holdouts,
    send_time_test_key,
)
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.selectors import template_versions, variant_weights
from notifier.experiments import compare, verdict

MEASURES = ("sent", "delivered", "opened", "clicked")


class ExperimentKind(models.TextChoices):
    """What a test compares: copies of the template, or the send time (best_time against now).
    A summary's `kind` is the member itself (a str): templates read `test.kind.is_copy`."""

    COPY = "copy", "copy"
    SEND_TIME = "send_time", "send_time"

    @property
    def is_copy(self) -> bool:
        return self is ExperimentKind.COPY


def _tests(
    variants: list[TemplateVariant], channel: str | None
) -> dict[tuple[str, str], list[TemplateVariant]]:
    groups: dict[tuple[str, str], list[TemplateVariant]] = {}
    for variant in variants:
        if channel is None or variant.channel == channel:
            groups.setdefault((variant.channel, variant.locale), []).append(variant)
    return {
        key: sorted(group, key=lambda v: v.label)
        for key, group in sorted(groups.items())
        if variant_weights(group)
    }


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_up(at: dt.datetime) -> dt.datetime:
    """The first whole hour at or after `at`: the rollup's hours in [start, end) count what was
    sent in [_hour_up(start), _hour_up(end))."""
    hour = _hour(at)
    return hour if hour == at else hour + dt.timedelta(hours=1)


def _since(versions: list[TemplateVersion], channel: str, locale: str) -> dt.datetime:
    """When the current label set of `channel`/`locale` was introduced: the creation of the
    oldest version in the unbroken run of versions (newest first) that have those labels."""

    def labels(version: TemplateVersion) -> set[str]:
        return {v.label for v in version.variants.all() if (v.channel, v.locale) == key}

    key = (channel, locale)
    current = labels(versions[0])
    since = versions[0].created_at
    for version in versions[1:]:
        if labels(version) != current:
            break
        since = version.created_at
    return since


def _rows(
    *, client: ApiClient, template: Template, start: dt.datetime, end: dt.datetime
) -> QuerySet[Rollup]:
    """The template's rollup rows of the hours in [start, end) that `client` may see (an ops
    key: every client's)."""
    rows = Rollup.objects.filter(template=template, hour__gte=start, hour__lt=end)
    return rows if client.is_ops else rows.filter(client=client)


def _counts(
    *,
    client: ApiClient,
    template: Template,
    start: dt.datetime,
    end: dt.datetime,
    channel: str,
) -> dict[str, dict[str, int]]:
    """A copy test's counts by label: a send-time arm is never a copy label (RESERVED_LABELS),
    and its rows stay out all the same."""
    rows = (
        _rows(client=client, template=template, start=start, end=end)
        .filter(channel=channel)
        .exclude(variant__in=["", *SEND_TIME_ARMS])
    )
    totals = rows.values("variant").annotate(**{m: Sum(m) for m in MEASURES})
    return {r["variant"]: {m: int(r[m] or 0) for m in MEASURES} for r in totals}


def _comparison(
    successes: tuple[int, int], trials: tuple[int, int], *, ready: bool, minimum: int
) -> dict[str, Any] | None:
    if min(trials) <= 0:
        return None
    a, b = (min(s, t) for s, t in zip(successes, trials, strict=True))
    result = compare(a, trials[0], b, trials[1])
    return {
        "rate_a": result.rate_a,
        "rate_b": result.rate_b,
        "difference": result.difference,
        "z": result.z,
        "p_value": result.p_value,
        "low": result.low,
        "high": result.high,
        "verdict": verdict(result, trials=trials, minimum=minimum) if ready else None,
    }


def _rate(successes: int, trials: int) -> float | None:
    return min(successes, trials) / trials if trials else None


def _results(
    labels: list[tuple[str, int | None]],
    counts: Mapping[str, dict[str, int]],
    *,
    minimum: int,
    comparable: bool = True,
) -> dict[str, Any]:
    """`ready`, `labels` and `comparisons` of one test: its (label, weight) pairs, the first the
    control, with their counts (a label absent from `counts` has counted nothing). Not
    `comparable` (a send-time test's counts pooling several holdouts): never ready."""
    totals = [counts.get(label, dict.fromkeys(MEASURES, 0)) for label, _ in labels]
    arms = [
        {
            "label": label,
            "weight": weight,
            **c,
            "open_rate": _rate(c["opened"], c["sent"]),
            "click_rate": _rate(c["clicked"], c["sent"]),
        }
        for (label, weight), c in zip(labels, totals, strict=True)
    ]
    # A label weighted 0 takes no new recipients: the verdict does not wait for it. A send-time
    # arm has no stored weight (None): it always counts.
    ready = comparable and all(
        c["sent"] >= minimum
        for (_, weight), c in zip(labels, totals, strict=True)
        if weight is None or weight > 0
    )
    control = totals[0]
    comparisons = [
        {
            "label": label,
            "against": labels[0][0],
            **{
                name: _comparison(
                    (control[measure], c[measure]),
                    (control["sent"], c["sent"]),
                    ready=ready,
                    minimum=minimum,
                )
                for name, measure in (("open", "opened"), ("click", "clicked"))
            },
        }
        for (label, _), c in zip(labels[1:], totals[1:], strict=True)
    ]
    return {"ready": ready, "labels": arms, "comparisons": comparisons}


def _copy_tests(
    *,
    client: ApiClient,
    template: Template,
    start: dt.datetime,
    end: dt.datetime,
    channel: str | None,
    minimum: int,
) -> list[dict[str, Any]]:
    """The copy tests of the template's current version, channel then locale order."""
    versions = list(template_versions(template=template))
    if not versions:
        return []
    version = versions[0]
    summary = []
    for (test_channel, locale), group in _tests(list(version.variants.all()), channel).items():
        since = max(start, _hour(_since(versions, test_channel, locale)))
        counts = _counts(
            client=client, template=template, start=since, end=end, channel=test_channel
        )
        summary.append(
            {
                "kind": ExperimentKind.COPY,
                "channel": test_channel,
                "locale": locale,
                "test_key": f"{template.key}:{test_channel}",
                "version": version.number,
                "start": since.isoformat(),
                "end": end.isoformat(),
                "minimum_sample": minimum,
                "holdouts": None,
                **_results([(v.label, v.weight) for v in group], counts, minimum=minimum),
            }
        )
    return summary


def _send_time_tests(
    *,
    client: ApiClient,
    template: Template,
    start: dt.datetime,
    end: dt.datetime,
    channel: str | None,
    minimum: int,
) -> list[dict[str, Any]]:
    """A send-time test per channel where both its arms counted something in [start, end),
    channel order: one grouped query of the rollup for every channel, one of the deliveries for
    their holdouts."""
    rows = _rows(client=client, template=template, start=start, end=end).filter(
        variant__in=SEND_TIME_ARMS
    )
    if channel is not None:
        rows = rows.filter(channel=channel)
    by_channel: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows.values("channel", "variant").annotate(**{m: Sum(m) for m in MEASURES}):
        by_channel.setdefault(r["channel"], {})[r["variant"]] = {
            m: int(r[m] or 0) for m in MEASURES
        }
    # One arm with nothing at all (a holdout of 0 or 100 puts everyone in the other): no test,
    # and none that could ever reach a verdict.
    by_channel = {
        test_channel: counts
        for test_channel, counts in by_channel.items()
        if all(any(counts.get(arm, {}).values()) for arm in SEND_TIME_ARMS)
    }
    if not by_channel:
        return []
    holdouts = send_time_holdouts(
        client=client,
        template_id=template.pk,
        sent_from=_hour_up(start),
        sent_to=_hour_up(end),
        channel=channel,
    )
    return [
        {
            "kind": ExperimentKind.SEND_TIME,
            "channel": test_channel,
            "locale": None,  # the holdout splits recipients, whatever their locale
            "test_key": send_time_test_key(template.key),
            "version": None,  # no copy is tested: any version's deliveries count
            "start": start.isoformat(),
            "end": end.isoformat(),
            "minimum_sample": minimum,
            "holdouts": holdouts.get(test_channel, []),
            # The holdout's share is per request (best_time_holdout), not stored: no weight.
            # Requests with different holdouts split their recipients differently: their
            # pooled arms can show a difference none of them has (Simpson's paradox).
            **_results(
                [(IMMEDIATE, None), (BEST_TIME, None)],
                counts,
                minimum=minimum,
                comparable=len(holdouts.get(test_channel, [])) <= 1,
            ),
        }
        for test_channel, counts in sorted(by_channel.items())
    ]


def experiment_summary(
    *,
    client: ApiClient,
    template: Template,
    start: dt.datetime,
    end: dt.datetime,
    channel: str | None = None,
) -> list[dict[str, Any]]:
    """Each A/B test of `template` (of `channel` only, if given) over the hours in [start, end):
    the copy tests of its current version, then its send-time tests; the module's docstring
    gives the shape. A client sees its own counts; an ops key every client's."""
    minimum: int = settings.ANALYTICS_AB_MIN_SAMPLE
    return [
        *_copy_tests(
            client=client, template=template, start=start, end=end, channel=channel, minimum=minimum
        ),
        *_send_time_tests(
            client=client, template=template, start=start, end=end, channel=channel, minimum=minimum
        ),
    ]
