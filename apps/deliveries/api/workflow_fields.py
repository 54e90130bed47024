"""The request fields of the workflows (issue 15): a throttle and escalation steps, parsed by
notifier.workflows, with their OpenAPI schemas."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import DURATION_SCHEMA
from apps.core.fields import THROTTLE_SCHEMA as CORE_THROTTLE_SCHEMA
from notifier.types import Channel
from notifier.workflows import (
    ESCALATION_MAX_STEPS,
    UNLESS_STATES,
    EscalationStep,
    SpecError,
    Throttle,
    escalation_parse,
    throttle_parse,
)

CHANNELS = [c.value for c in Channel]

THROTTLE_SCHEMA = {
    **CORE_THROTTLE_SCHEMA,
    "description": "At most `limit` notifications of this template per recipient (and per "
    "rendered `key`) in `window`; beyond it the deliveries are `skipped`, reason `throttled`.",
}
ESCALATION_SCHEMA = {
    "type": "array",
    "maxItems": ESCALATION_MAX_STEPS,
    "description": "Steps sent after their delay unless an earlier delivery of the "
    "notification reached `unless`; an in-app read or an open/click cancels them (`engaged`). "
    "Scheduled per recipient (with `topic`, per subscriber as the fan-out reaches them).",
    "items": {
        "type": "object",
        "properties": {
            "after": {**DURATION_SCHEMA, "example": "30m"},
            "channels": {"type": "array", "minItems": 1, "items": {"enum": CHANNELS}},
            "unless": {"enum": list(UNLESS_STATES), "default": "read"},
        },
        "required": ["after", "channels"],
    },
}


def _spec_error(exc: SpecError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.fields)


@extend_schema_field(
    {
        "oneOf": [THROTTLE_SCHEMA, {"type": "boolean", "enum": [False]}],
        "description": "The template's throttle is used unless given here; `false`: none. "
        "Counted per recipient, a topic's subscribers included.",
    }
)
class ThrottleField(serializers.Field):  # type: ignore[type-arg]
    """A throttle object, or `false` for none (absent: the template's)."""

    def to_internal_value(self, data: Any) -> Throttle | bool:
        if data is False:
            return False
        try:
            return throttle_parse(data)
        except SpecError as exc:
            raise _spec_error(exc) from exc

    def to_representation(self, value: Any) -> Any:
        return value.as_json() if isinstance(value, Throttle) else value


@extend_schema_field(ESCALATION_SCHEMA)
class EscalationField(serializers.Field):  # type: ignore[type-arg]
    """Escalation steps (see notifier.workflows)."""

    def to_internal_value(self, data: Any) -> list[EscalationStep]:
        try:
            return escalation_parse(data)
        except SpecError as exc:
            raise _spec_error(exc) from exc

    def to_representation(self, value: Any) -> Any:
        return [step.as_json() if isinstance(step, EscalationStep) else step for step in value]
