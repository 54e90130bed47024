"""Validation and shapes of the templates API."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import validate_slug
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.errors import InvalidInput
from apps.core.fields import (
    THROTTLE_SCHEMA,
    CategoryField,
    DigestField,
    StrictCharField,
    StrictIntegerField,
)
from apps.core.validation import validate_locale
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.validation import variant_labels_check
from notifier.rendering import DIGEST_VARIABLES, SERVICE_VARIABLES
from notifier.types import Channel, Priority
from notifier.workflows import SpecError, throttle_parse

CHANNELS = [c.value for c in Channel]
PRIORITIES = [p.value for p in Priority]
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$")
MAX_WEIGHT = 1_000_000
MAX_VARIANTS = 200

# Which parts each channel's variant has: (required, optional).
CHANNEL_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    Channel.EMAIL: (frozenset({"subject", "body"}), frozenset({"html"})),
    Channel.SMS: (frozenset({"body"}), frozenset()),
    Channel.PUSH: (frozenset({"title", "body"}), frozenset()),
    Channel.INAPP: (frozenset({"title", "body"}), frozenset()),
}
PARTS = ("subject", "title", "body", "html")


class VariantSerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=CHANNELS)
    locale = StrictCharField(max_length=20, required=False, validators=[validate_locale])
    subject = StrictCharField(max_length=500, required=False, allow_blank=True)
    title = StrictCharField(max_length=500, required=False, allow_blank=True)
    body = StrictCharField(max_length=100_000, required=False, allow_blank=True)
    html = StrictCharField(max_length=500_000, required=False, allow_blank=True)
    # The metaclass takes declared fields off the class: this never replaces Field.label.
    label = StrictCharField(  # type: ignore[assignment]
        max_length=20,
        required=False,
        allow_blank=True,
        default="",
        help_text="An A/B test's label (`A`, `B`, ...): required and distinct among the variants "
        "of one channel and locale when there are several (siblings); optional for a lone one.",
    )
    weight = StrictIntegerField(
        min_value=0,
        max_value=MAX_WEIGHT,
        required=False,
        default=1,
        help_text="The label's relative share of new recipients (integer >= 0; at least one "
        "sibling above 0). Editing weights moves new recipients only (docs/analytics.md).",
    )

    def validate_label(self, value: str) -> str:
        if value and not LABEL_RE.match(value):
            raise serializers.ValidationError(
                "Letters, digits, `_`, `.` or `-` (at most 20), starting with a letter or digit."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        required, optional = CHANNEL_FIELDS[attrs["channel"]]
        errors: dict[str, list[str]] = {}
        for part in PARTS:
            given = bool(attrs.get(part))
            if part in required and not given:
                errors[part] = [f"Required for {attrs['channel']} variants."]
            elif given and part not in required | optional:
                errors[part] = [f"Not used by {attrs['channel']} variants."]
        if errors:
            raise serializers.ValidationError(errors)
        attrs.setdefault("locale", "en")
        return attrs


TEMPLATE_THROTTLE_SCHEMA = {
    **THROTTLE_SCHEMA,
    "nullable": True,
    "description": "Per recipient, at most `limit` notifications of this template in `window` "
    "(per rendered `key`); the rest are `skipped`, reason `throttled`. `critical` bypasses it.",
    "example": {"limit": 1, "window": "10m", "key": "{{ thread_id }}"},
}


@extend_schema_field(TEMPLATE_THROTTLE_SCHEMA)
class TemplateThrottleField(serializers.Field):  # type: ignore[type-arg]
    """A throttle object (notifier.workflows), stored in its normal JSON form; null: none."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return throttle_parse(data).as_json()
        except SpecError as exc:
            raise serializers.ValidationError(exc.fields) from exc

    def to_representation(self, value: Any) -> Any:
        return value


class TemplateWriteSerializer(serializers.Serializer[Any]):
    """PUT body (and POST body, which also carries `key`)."""

    category = CategoryField(required=False, default="general")
    priority = serializers.ChoiceField(choices=PRIORITIES, required=False, default="normal")
    variables = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, default=list, max_length=200
    )
    variants = serializers.ListField(
        child=VariantSerializer(), allow_empty=False, max_length=MAX_VARIANTS
    )
    throttle = TemplateThrottleField(required=False, allow_null=True, default=None)
    digest = DigestField(
        required=False,
        help_text=(
            "Batch this template's notifications into digests: `{window, key, max_items}`; "
            "its variants then render `items` and `count` (docs/workflows.md)."
        ),
    )

    def validate_variables(self, value: list[str]) -> list[str]:
        bad = [v for v in value if not IDENTIFIER_RE.match(v)]
        if bad:
            raise serializers.ValidationError(f"Not variable names: {', '.join(bad[:10])}.")
        reserved = sorted(set(value) & SERVICE_VARIABLES)
        if reserved:
            raise serializers.ValidationError(
                f"Provided by the service, not the caller: {', '.join(reserved)}."
            )
        return list(dict.fromkeys(value))

    def validate_variants(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            variant_labels_check(variants=value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from exc
        return value


class TemplateCreateSerializer(TemplateWriteSerializer):
    key = StrictCharField(max_length=100, validators=[validate_slug])


class VariantOutSerializer(serializers.ModelSerializer[TemplateVariant]):
    class Meta:
        model = TemplateVariant
        fields = ["channel", "locale", "label", "weight", "subject", "title", "body", "html"]


class VersionSerializer(serializers.ModelSerializer[TemplateVersion]):
    variants = VariantOutSerializer(many=True)
    required_variables = serializers.ListField(child=serializers.CharField(), source="variables")

    class Meta:
        model = TemplateVersion
        fields = ["number", "required_variables", "note", "created_at", "variants"]


def _required(template: Template, version: TemplateVersion | None) -> list[str]:
    """What a request must give: a digest template's `items` and `count` come from the
    digest (or a digest of one), not from the caller."""
    if version is None:
        return []
    exempt = DIGEST_VARIABLES if template.digest else frozenset()
    return [name for name in version.variables if name not in exempt]


class TemplateSerializer(serializers.Serializer[Any]):
    """A template with its current version's content."""

    key = serializers.CharField()
    category = serializers.CharField()
    priority = serializers.CharField()
    variables = serializers.ListField(child=serializers.CharField())
    digest = DigestField(allow_null=True)
    version = serializers.IntegerField()
    required_variables = serializers.ListField(child=serializers.CharField())
    variants = VariantOutSerializer(many=True)
    throttle = TemplateThrottleField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @staticmethod
    def data_for(template: Template, version: TemplateVersion | None) -> dict[str, Any]:
        order = ("channel", "locale", "label")
        variants = list(version.variants.order_by(*order)) if version else []
        return {
            "key": template.key,
            "category": template.category,
            "priority": template.default_priority,
            "variables": list(template.variables),
            "digest": template.digest,
            "version": version.number if version is not None else 0,
            "required_variables": _required(template, version),
            "variants": VariantOutSerializer(variants, many=True).data,
            "throttle": template.throttle,
            "created_at": serializers.DateTimeField().to_representation(template.created_at),
            "updated_at": serializers.DateTimeField().to_representation(template.updated_at),
        }
