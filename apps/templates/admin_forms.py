"""The template admin form: metadata plus the variants of a new version, as JSON."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.forms.fields import InvalidJSONInput
from rest_framework import exceptions, serializers

from apps.core.errors import InvalidInput
from apps.core.parsers import json_depth_exceeds, json_loads_strict
from apps.core.validation import validate_category
from apps.templates.api.serializers import IDENTIFIER_RE, VariantSerializer
from apps.templates.models import Template, TemplateVersion
from apps.templates.preview import PARTS
from apps.templates.selectors import template_current_version
from apps.templates.validation import template_variants_check
from notifier.rendering import SERVICE_VARIABLES
from notifier.workflows import SpecError, throttle_parse


def version_variants_json(version: TemplateVersion | None) -> str:
    """A version's variants as the JSON the form edits (only the parts each variant uses)."""
    if version is None:
        return "[]"
    variants = [
        {
            "channel": v.channel,
            "locale": v.locale,
            # An A/B test's label and weight, shown only for a variant in a test (or a weight
            # other than the default, so that saving the form unchanged adds no version).
            **({"label": v.label} if v.label else {}),
            **({"weight": v.weight} if v.label or v.weight != 1 else {}),
            **{p: getattr(v, p) for p in PARTS if getattr(v, p)},
        }
        for v in version.variants.order_by("channel", "locale", "label")
    ]
    return json.dumps(variants, indent=2, ensure_ascii=False)


def _normalised(variants: list[dict[str, Any]]) -> list[dict[str, str]]:
    return sorted(
        (
            {"channel": v["channel"], "locale": v.get("locale") or "en"}
            | {"label": v.get("label") or "", "weight": v.get("weight", 1)}
            | {p: v.get(p) or "" for p in PARTS}
            for v in variants
        ),
        key=lambda v: (v["channel"], v["locale"], v["label"]),
    )


def json_field_loads(raw: str) -> Any:
    """JSON typed into the admin, decoded as the API decodes a body (apps.core.parsers: at most
    JSON_MAX_DEPTH deep, no NaN, duplicate keys or NUL); forms.ValidationError says what is
    wrong. Python's own decoder recurses per level: `[` * 5000 would be a RecursionError (500)."""
    try:
        return json_loads_strict(raw, max_depth=settings.JSON_MAX_DEPTH)
    except (exceptions.ParseError, exceptions.ValidationError) as exc:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        raise forms.ValidationError(f"Not valid JSON: {detail}") from None


class StrictJSONField(forms.JSONField):
    """A model JSONField's form field whose input may not nest deeper than JSON_MAX_DEPTH
    (Django's decodes it with `json.loads`, which recurses per level: a 500 on deep input)."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and json_depth_exceeds(value, settings.JSON_MAX_DEPTH):
            raise forms.ValidationError(
                f"Not valid JSON: nested deeper than {settings.JSON_MAX_DEPTH} levels."
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Re-showing the form with the error decodes the input again.
        if isinstance(data, str) and json_depth_exceeds(data, settings.JSON_MAX_DEPTH):
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)


def variants_parse(raw: str) -> list[dict[str, Any]]:
    """The form's variants JSON checked as the API checks a save (shape, forbidden tags,
    sources that do not render); forms.ValidationError says what is wrong. The live preview
    runs the same check on unsaved text."""
    parsed = json_field_loads(raw)
    field = serializers.ListField(child=VariantSerializer(), allow_empty=False)
    try:
        variants: list[dict[str, Any]] = field.run_validation(parsed)
    except serializers.ValidationError as exc:
        raise forms.ValidationError(json.dumps(exc.detail)) from exc
    try:
        # The A/B rules too: siblings of one channel and locale need distinct labels.
        template_variants_check(variants=variants)
    except InvalidInput as exc:
        raise forms.ValidationError(exc.message) from exc
    return variants


def declared_variables(value: object) -> list[str]:
    """The form's `variables`: a list of variable names, or forms.ValidationError."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and IDENTIFIER_RE.match(v) and v not in SERVICE_VARIABLES for v in value
    ):
        raise forms.ValidationError('A JSON list of variable names, e.g. ["order_id"].')
    return value


class TemplateForm(forms.ModelForm):  # type: ignore[type-arg]
    """Saving with changed `variants` adds a new immutable version (the API's rules apply)."""

    variants = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "style": "font-family: monospace"}),
        help_text="JSON list of variants, e.g. "
        '[{"channel": "sms", "locale": "en", "body": "Order {{ order_id }} shipped."}]. '
        'An A/B test: several variants of one channel and locale, each with a "label" '
        '("A", "B", ...) and a "weight" (its share of new recipients, default 1). '
        "Changing them saves a new version; earlier versions never change.",
    )

    class Meta:
        model = Template
        fields = ["client", "key", "category", "default_priority", "variables", "throttle"]
        field_classes = {"variables": StrictJSONField}
        help_texts = {
            "throttle": 'Optional, e.g. {"limit": 1, "window": "10m", "key": "{{ thread_id }}"}: '
            "per recipient, later notifications in the window are skipped (throttled).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = template_current_version(template=self.instance) if self.instance.pk else None
        self.current_version = current
        self.fields["variants"].initial = version_variants_json(current)
        self.new_variants: list[dict[str, Any]] | None = None

    def clean_category(self) -> str:
        value: str = self.cleaned_data["category"]
        validate_category(value)  # the API's rule: a name the preference centre can store
        return value

    def clean_variables(self) -> list[str]:
        return declared_variables(self.cleaned_data.get("variables") or [])

    def clean_throttle(self) -> dict[str, Any] | None:
        value = self.cleaned_data.get("throttle")
        if value in (None, "", {}):
            return None
        try:
            return throttle_parse(value).as_json()
        except SpecError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_variants(self) -> str:
        raw: str = self.cleaned_data["variants"]
        variants = variants_parse(raw)
        current = json.loads(version_variants_json(self.current_version))
        if self.current_version is None or _normalised(variants) != _normalised(current):
            self.new_variants = variants
        return raw
