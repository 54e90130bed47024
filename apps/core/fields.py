"""Strict DRF fields: JSON types are checked, not coerced (`"yes"` is not a boolean)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.validation import validate_category
from notifier.digests import MAX_ITEMS_LIMIT, DigestError, parse_digest
from notifier.durations import DURATION_MAX_LENGTH, DURATION_PATTERN
from notifier.workflows import THROTTLE_KEY_MAX, THROTTLE_MAX_LIMIT

# OpenAPI: a duration as the workflows read it (notifier.durations).
DURATION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "maxLength": DURATION_MAX_LENGTH,
    "example": "10m",
}
# OpenAPI: a throttle object (notifier.workflows.throttle_parse), a template's or a request's;
# each use adds its description.
THROTTLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit": {"type": "integer", "minimum": 1, "maximum": THROTTLE_MAX_LIMIT},
        "window": DURATION_SCHEMA,
        "key": {"type": "string", "maxLength": THROTTLE_KEY_MAX, "example": "{{ thread_id }}"},
    },
    "required": ["limit", "window"],
}


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be a JSON boolean."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a JSON string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class CategoryField(StrictCharField):
    """A category name (validate_category), matched whole: "news\n" is refused, not trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Letters, digits and `_ . : -`, 1 to 50.")
        super().__init__(
            max_length=50, trim_whitespace=False, validators=[validate_category], **kwargs
        )


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a JSON integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


def contains_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character anywhere (PostgreSQL text cannot store it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


class JSONObjectField(serializers.DictField):
    """A free-form JSON object that PostgreSQL can store."""

    default_error_messages = {"nul": "Must not contain NUL characters."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value: dict[str, Any] = dict(super().to_internal_value(data))
        if contains_nul(value):
            self.fail("nul")
        return value


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "window": {**DURATION_SCHEMA, "example": "1h"},
                    "key": {"type": "string", "example": "{{ post_id }}"},
                    "max_items": {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS_LIMIT},
                },
                "required": ["window"],
                "additionalProperties": False,
            },
            {"type": "boolean", "enum": [False]},
        ],
        "nullable": True,
    }
)
class DigestField(serializers.Field[Any, Any, Any, Any]):
    """A digest declaration `{"window", "key", "max_items"}`, `false` for none, or null (no
    declaration). Checked here; kept as given (services parse it again into a DigestSpec)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if data is False:
            return False
        try:
            parse_digest(data, field="")  # the key parsed too: a syntax error is a 400 now
        except DigestError as exc:
            raise serializers.ValidationError(
                [f"{k.lstrip('.') or 'digest'}: {'; '.join(v)}" for k, v in exc.fields.items()]
            ) from exc
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value
