"""Strict DRF fields: JSON types are checked, not coerced (`"yes"` is not a boolean)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


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
