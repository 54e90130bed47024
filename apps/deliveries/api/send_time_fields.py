"""`send_at` of a notification request: a date-time, or "best_time" (each recipient at their most
engaged local hour, apps/deliveries/best_time.py); and `best_time_holdout`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import StrictIntegerField

BEST_TIME = "best_time"

SEND_AT_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "enum": [BEST_TIME]},
    ],
    "description": (
        'A date-time (ISO 8601): every delivery is `scheduled` until then. `"best_time"`: '
        "each recipient's deliveries are `scheduled` at the next start of their most engaged "
        "hour of their local day (their opens, clicks and reads of the last 90 days), within "
        "24 hours, or sent at once with too little history (`ANALYTICS_BEST_TIME_MIN_EVENTS`); "
        "quiet hours apply at send. Not with `topic` or `escalation`."
    ),
}


@extend_schema_field(SEND_AT_SCHEMA)
class SendAtField(serializers.Field[Any, Any, Any, Any]):
    """A date-time (returned as an aware datetime) or the string "best_time" (returned as is)."""

    default_error_messages = {
        "invalid": 'Must be a date-time (ISO 8601, e.g. 2030-01-01T09:00:00Z) or "best_time".'
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._datetime = serializers.DateTimeField()

    def to_internal_value(self, data: Any) -> Any:
        if data == BEST_TIME:
            return BEST_TIME
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return self._datetime.to_internal_value(data)
        except serializers.ValidationError as exc:
            if exc.get_codes() == ["invalid"]:  # not a date-time at all: say what else is valid
                self.fail("invalid")
            raise  # a date-time out of range, say: its own message

    def to_representation(self, value: Any) -> Any:
        return value if value == BEST_TIME else self._datetime.to_representation(value)


@extend_schema_field({**SEND_AT_SCHEMA, "nullable": True})
class NotificationSendAtField(serializers.Field[Any, Any, Any, Any]):
    """A notification's `send_at` (read from the whole notification): its date-time, "best_time",
    or null (sent at once)."""

    def to_representation(self, value: Any) -> Any:
        if value.send_time == BEST_TIME:
            return BEST_TIME
        return (
            None
            if value.send_at is None
            else serializers.DateTimeField().to_representation(value.send_at)
        )


class HoldoutField(StrictIntegerField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            'With `"send_at": "best_time"` only: the percentage (0-100) of recipients sent at '
            "once instead, an A/B test of the send time. The split is sticky per recipient "
            "(test key `best_time:<template>`); each delivery's `variant` is `best_time` or "
            "`immediate`, for the analytics' `group_by=variant`. Refused when the template "
            "version has labelled copy variants on a requested channel (one test at a time).",
        )
        super().__init__(min_value=0, max_value=100, **kwargs)


def send_time_errors(attrs: dict[str, Any], data: Any) -> dict[str, list[str]]:
    """The combinations a best-time request may not have, by field."""
    errors: dict[str, list[str]] = {}
    best = attrs.get("send_at") == BEST_TIME
    # (a bad `send_at` is reported for itself)
    if "best_time_holdout" in data and not best and ("send_at" not in data or "send_at" in attrs):
        errors["best_time_holdout"] = ['only with "send_at": "best_time"']
    if best and "topic" in data:
        errors["send_at"] = ['"best_time" is not available for a topic: list the recipients']
    if best and attrs.get("escalation"):
        errors["send_at"] = ['"best_time" cannot be combined with `escalation`']
    return errors
