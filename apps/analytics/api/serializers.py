"""The analytics API's query parameters and its answer, as OpenAPI components."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from apps.analytics.experiments import ExperimentKind
from apps.analytics.models import COUNTERS
from apps.analytics.selectors import GROUP_BY, LATENCIES, RATES
from notifier.experiments import VERDICTS
from notifier.types import Channel

CHANNELS = [c.value for c in Channel]
DEFAULT_RANGE = dt.timedelta(days=30)
# The longest range one request may ask for (a year and a margin).
MAX_RANGE = dt.timedelta(days=400)
BOUND_HELP = (
    "An ISO date (`2026-11-01`, midnight UTC) or date-time (`2026-11-01T09:00:00Z`; without "
    "an offset, UTC), floored to the start of its UTC hour (the figures are hourly; the answer "
    "echoes the floored value). An hour counts when its start is in [from, to): `to` is "
    "exclusive."
)
# A template key, or (ops keys) "client name/template key".
TEMPLATE_PATTERN = r"^(?:[^/\x00]{1,100}/)?[-a-zA-Z0-9_]{1,100}$"
RATES_HELP = {
    "delivery": "delivered / sent.",
    "open": "opened / sent (event time: may exceed 1, see docs/analytics.md).",
    "click": "clicked / sent (event time).",
    "read": "read / sent (event time).",
    "failure": "(failed + dead) / (sent + dead): a `failed` delivery was sent (the provider "
    "reported it failed), a `dead` one never was.",
}


BAD_INSTANT = "Expected an ISO date (2026-11-01) or date-time (2026-11-01T09:00:00Z)."


def _instant(value: str) -> dt.datetime:
    """An ISO date or date-time as an aware UTC datetime, floored to its hour."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError as exc:  # well-formed but impossible: 2026-13-01
        raise serializers.ValidationError(BAD_INSTANT) from exc
    if moment is None:
        if day is None:
            raise serializers.ValidationError(BAD_INSTANT)
        moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    except OverflowError as exc:  # 0001-01-01T00:00+05:00 is in the year 0 in UTC
        raise serializers.ValidationError(BAD_INSTANT) from exc


def _next_hour(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


class AnalyticsQuerySerializer(serializers.Serializer[Any]):
    # `from` is a Python keyword: the field is declared below under its query name.
    to = serializers.CharField(required=False, max_length=40, help_text=BOUND_HELP)
    template = serializers.RegexField(
        TEMPLATE_PATTERN,
        required=False,
        max_length=201,
        help_text='A template key; an ops key may write "client name/template key".',
    )
    channel = serializers.ChoiceField(choices=CHANNELS, required=False)
    group_by = serializers.ChoiceField(choices=list(GROUP_BY), required=False, default="day")
    client = serializers.CharField(
        required=False, max_length=100, help_text="Ops keys only: one client's rows (its name)."
    )
    # DRF's own `?format=` (the schema lists csv and json): DRF answers an unknown one 404 and
    # takes an empty one as absent; here an empty one is a 400 like any other bad value.
    format = serializers.ChoiceField(choices=["csv", "json"], required=False)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = serializers.CharField(required=False, max_length=40, help_text=BOUND_HELP)
        return fields

    def validate_from(self, value: str) -> dt.datetime:
        return _instant(value)

    def validate_to(self, value: str) -> dt.datetime:
        return _instant(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start: dt.datetime | None = attrs.get("from")
        end: dt.datetime | None = attrs.get("to")
        try:
            if end is None:
                end = _next_hour(timezone.now()) if start is None else start + DEFAULT_RANGE
        except OverflowError as exc:
            raise serializers.ValidationError({"to": ["Past the year 9999: give `to`."]}) from exc
        try:
            if start is None:
                start = end - DEFAULT_RANGE
        except OverflowError as exc:
            raise serializers.ValidationError({"to": ["Too early: give `from` too."]}) from exc
        if start >= end:
            raise serializers.ValidationError(
                {"to": ["Must be in a later UTC hour than `from` (both are floored to the hour)."]}
            )
        if end - start > MAX_RANGE:
            raise serializers.ValidationError(
                {"to": [f"At most {MAX_RANGE.days} days after `from`."]}
            )
        return {**attrs, "from": start, "to": end}


class AnalyticsLatencyStatsSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="Samples in the histogram.")
    p50 = serializers.IntegerField(allow_null=True, help_text="Upper bound (ms) of the bucket.")
    p95 = serializers.IntegerField(allow_null=True, help_text="Upper bound (ms) of the bucket.")
    mean = serializers.IntegerField(allow_null=True)


def _counts_serializer() -> serializers.Serializer[Any]:
    fields = {name: serializers.IntegerField() for name in COUNTERS}
    cls = type("AnalyticsCountsSerializer", (serializers.Serializer,), fields)
    return cls()  # type: ignore[no-any-return]


def _rates_serializer() -> serializers.Serializer[Any]:
    fields = {
        name: serializers.FloatField(allow_null=True, help_text=RATES_HELP[name]) for name in RATES
    }
    cls = type("AnalyticsRatesSerializer", (serializers.Serializer,), fields)
    return cls()  # type: ignore[no-any-return]


def _latency_serializer() -> serializers.Serializer[Any]:
    fields = {name: AnalyticsLatencyStatsSerializer() for name in LATENCIES}
    cls = type("AnalyticsLatencySerializer", (serializers.Serializer,), fields)
    return cls()  # type: ignore[no-any-return]


class AnalyticsGroupSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(
        help_text=(
            "The group: a UTC day (2026-11-01), an hour (2026-11-01T09:00:00Z), a channel, a "
            'template key ("client name/template key" for an ops key without `client`), an A/B '
            'label ("" outside a test and before the send) or a provider ("" before a send).'
        )
    )
    counts = _counts_serializer()
    skipped_reasons = serializers.DictField(child=serializers.IntegerField())
    rates = _rates_serializer()
    latency_ms = _latency_serializer()
    cost = serializers.CharField(help_text="Decimal, in `currency`.")


class AnalyticsProportionTestSerializer(serializers.Serializer[Any]):
    """One rate of a challenger against the control: the two-proportion z-test."""

    rate_a = serializers.FloatField(help_text="The control's rate (per sent).")
    rate_b = serializers.FloatField(help_text="The challenger's rate (per sent).")
    difference = serializers.FloatField(help_text="rate_b - rate_a.")
    z = serializers.FloatField(help_text="z statistic (pooled standard error).")
    p_value = serializers.FloatField(help_text="Two-sided.")
    low = serializers.FloatField(help_text="95% interval of the difference: its low end.")
    high = serializers.FloatField(help_text="95% interval of the difference: its high end.")
    verdict = serializers.ChoiceField(
        choices=VERDICTS,
        allow_null=True,
        help_text='"a": the control wins, "b": the challenger, "none": no significant difference '
        "at 5%; null until the test is `ready`.",
    )


class AnalyticsExperimentLabelSerializer(serializers.Serializer[Any]):
    # The metaclass takes declared fields off the class: this never replaces Field.label.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="A copy label, or a send-time arm."
    )
    weight = serializers.IntegerField(
        allow_null=True, help_text="The label's weight; null for a send-time arm (not stored)."
    )
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True, help_text="opened / sent; null: none sent.")
    click_rate = serializers.FloatField(allow_null=True, help_text="clicked / sent.")


class AnalyticsExperimentComparisonSerializer(serializers.Serializer[Any]):
    # The metaclass takes declared fields off the class: this never replaces Field.label.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="The challenger."
    )
    against = serializers.CharField(help_text="The control: the test's first label.")
    open = AnalyticsProportionTestSerializer(
        allow_null=True, help_text="Null when either label has nothing sent."
    )
    click = AnalyticsProportionTestSerializer(
        allow_null=True, help_text="Null when either label has nothing sent."
    )


class AnalyticsExperimentSerializer(serializers.Serializer[Any]):
    """One A/B test of the template (apps.analytics.experiments, docs/analytics.md)."""

    kind = serializers.ChoiceField(
        choices=ExperimentKind.choices,
        help_text='"copy": labelled variants of a channel and locale; "send_time": '
        "`best_time_holdout`, `best_time` against `immediate` (the held-out recipients).",
    )
    channel = serializers.ChoiceField(choices=CHANNELS)
    locale = serializers.CharField(allow_null=True, help_text="Null for a send-time test.")
    test_key = serializers.CharField(
        help_text='"template key:channel", or "best_time:template key" for a send-time test.'
    )
    version = serializers.IntegerField(
        allow_null=True,
        help_text="The current version, whose labels are tested; null for a send-time test.",
    )
    start = serializers.DateTimeField(
        help_text="The first hour counted: `from`, or a copy test's label set's first hour if "
        "later."
    )
    end = serializers.DateTimeField(help_text="`to` (exclusive).")
    minimum_sample = serializers.IntegerField(help_text="ANALYTICS_AB_MIN_SAMPLE.")
    holdouts = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=100),
        allow_null=True,
        help_text="A send-time test's: the distinct `best_time_holdout`s of the requests whose "
        "arms' deliveries were sent in the range, ascending (`[]`: none on record any more). "
        "More than one: no verdict (`ready` is false), the pooled arms mix splits. Null for a "
        "copy test.",
    )
    ready = serializers.BooleanField(
        help_text="Every label weighted above 0 (both send-time arms) has `minimum_sample` sent, "
        "and a send-time test has at most one holdout: verdicts are given."
    )
    labels = AnalyticsExperimentLabelSerializer(many=True, help_text="The first is the control.")
    comparisons = AnalyticsExperimentComparisonSerializer(
        many=True, help_text="Each other label against the first."
    )


class AnalyticsReportSerializer(serializers.Serializer[Any]):
    # `from` is a keyword: declared in get_fields.
    to = serializers.DateTimeField()
    group_by = serializers.ChoiceField(choices=list(GROUP_BY))
    currency = serializers.CharField()
    rows = AnalyticsGroupSerializer(many=True)
    totals = AnalyticsGroupSerializer()
    experiment = AnalyticsExperimentSerializer(
        many=True,
        allow_null=True,
        help_text="With `group_by=variant` and `template`: the template's A/B tests over the "
        "range, one object per test: its copy tests (`kind` `copy`), then a send-time test "
        "(`kind` `send_time`) per channel where both its arms counted something (per label "
        "counts and open/click rates, each challenger against the first label: difference, "
        "95% interval, p-value, verdict once `ready`; docs/analytics.md). Null otherwise.",
    )

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        return {"from": serializers.DateTimeField(), **fields}
