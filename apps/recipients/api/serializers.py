"""Validation and shapes of the recipients API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import (
    JSONObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from apps.recipients.models import Device, Preference, Recipient
from apps.recipients.validation import (
    CATEGORY_RE,
    DEVICE_TOKEN_MAX,
    normalise_phone,
    validate_device_token,
    validate_locale,
    validate_timezone,
)
from notifier.digests import CADENCE_RE, parse_cadence
from notifier.types import Channel

CHANNELS = [c.value for c in Channel]
DIGEST_CATEGORIES_MAX = 100
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class RecipientWriteSerializer(serializers.Serializer[Any]):
    """PUT body: every field optional; the ones given are set."""

    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = StrictCharField(max_length=32, required=False, allow_blank=True)
    locale = StrictCharField(max_length=20, required=False, validators=[validate_locale])
    timezone = StrictCharField(max_length=64, required=False, validators=[validate_timezone])
    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    # The metaclass moves declared fields out of the class, so `Serializer.data` is not shadowed.
    data = JSONObjectField(required=False)  # type: ignore[assignment]

    def validate_phone(self, value: str) -> str:
        return normalise_phone(value)


class RecipientSerializer(serializers.ModelSerializer[Recipient]):
    class Meta:
        model = Recipient
        fields = [
            "external_id",
            "email",
            "phone",
            "locale",
            "timezone",
            "name",
            "data",
            "created_at",
            "updated_at",
        ]


class RecipientDetailSerializer(RecipientSerializer):
    """A recipient as GET and PUT answer it: the profile and what the apps above add."""

    topics = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Keys of the topics the recipient follows, in key order: the first 100.",
    )
    topics_total = serializers.IntegerField(
        read_only=True, help_text="How many topics the recipient follows in all."
    )

    class Meta(RecipientSerializer.Meta):
        fields = [*RecipientSerializer.Meta.fields, "topics", "topics_total"]


@extend_schema_field({"type": "string", "pattern": HHMM_RE.pattern, "example": "22:00"})
class HHMMField(serializers.Field[dt.time, str, str, Any]):
    default_error_messages = {"invalid": "Must be a time as HH:MM (00:00 to 23:59)."}

    def to_internal_value(self, data: Any) -> dt.time:
        if not isinstance(data, str) or not HHMM_RE.match(data):
            self.fail("invalid")
        return dt.time.fromisoformat(data)

    def to_representation(self, value: dt.time) -> str:
        return value.strftime("%H:%M")


class QuietHoursSerializer(serializers.Serializer[Any]):
    start = HHMMField()
    end = HHMMField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError("start and end must differ.")
        return attrs


class ChannelFlagsField(serializers.DictField):
    """`{"sms": false}`: keys are channels, values booleans."""

    child = StrictBooleanField()

    def to_internal_value(self, data: Any) -> dict[str, bool]:
        flags: dict[str, bool] = dict(super().to_internal_value(data))
        unknown = sorted(set(flags) - set(CHANNELS))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown channel(s) {', '.join(unknown)}; expected {', '.join(CHANNELS)}."
            )
        return flags


class CategoriesField(serializers.DictField):
    """`{"marketing": {"email": false}}`. A name the recipient's preferences already hold is
    taken as it is: one stored before the rule was enforced everywhere (an unsubscribe link of
    an older notification's free-text category) must not make every later save a 400."""

    child = ChannelFlagsField()

    def to_internal_value(self, data: Any) -> dict[str, dict[str, bool]]:
        categories: dict[str, dict[str, bool]] = dict(super().to_internal_value(data))
        stored = self.context.get("stored_categories", frozenset())
        # fullmatch: `$` lets a name end in "\n".
        bad = sorted(k for k in categories if not CATEGORY_RE.fullmatch(k) and k not in stored)
        if bad:
            raise serializers.ValidationError(f"Invalid category name(s): {', '.join(bad)}.")
        return categories


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "pattern": CADENCE_RE.pattern},
        "maxProperties": DIGEST_CATEGORIES_MAX,
        "description": "A cadence per category (a name of 1 to 50 letters, digits and "
        f"`_ . : -`), for at most {DIGEST_CATEGORIES_MAX} categories.",
        "example": {"social": "hourly", "marketing": "daily@09:00", "billing": "off"},
    }
)
class DigestCadencesField(serializers.DictField):
    """`{"social": "hourly" | "daily@09:00" | "off"}`: a digest cadence per category, for at
    most DIGEST_CATEGORIES_MAX categories (the preference row is read for every delivery)."""

    child = StrictCharField(max_length=20)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, dict) and len(data) > DIGEST_CATEGORIES_MAX:
            raise serializers.ValidationError(
                f"At most {DIGEST_CATEGORIES_MAX} categories ({len(data)} given)."
            )
        cadences: dict[str, str] = dict(super().to_internal_value(data))
        # fullmatch: `$` lets a name end in "\n"; the name is at most 50 characters.
        errors = [
            f"invalid category name {k!r}" for k in sorted(cadences) if not CATEGORY_RE.fullmatch(k)
        ]
        for category, value in sorted(cadences.items()):
            try:
                parse_cadence(value)
            except ValueError as exc:
                errors.append(f"{category}: {exc}")
        if errors:
            raise serializers.ValidationError(errors)
        return cadences


class PreferenceWriteSerializer(serializers.Serializer[Any]):
    """Built with `editing` so that the category names already stored are known."""

    channels = ChannelFlagsField(required=False)
    categories = CategoriesField(required=False)
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True)
    daily_limit = StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=100_000
    )
    digest = DigestCadencesField(required=False)

    @classmethod
    def editing(cls, pref: Preference | None, *, data: Any) -> PreferenceWriteSerializer:
        """The serializer for a change to `pref` (None: the recipient has no row yet)."""
        stored = frozenset(pref.categories) if pref is not None else frozenset()
        return cls(data=data, context={"stored_categories": stored})


class PreferenceSerializer(serializers.Serializer[Any]):
    """The preferences as read (a recipient without a row has the defaults)."""

    channels = serializers.DictField(child=serializers.BooleanField())
    categories = serializers.DictField(
        child=serializers.DictField(child=serializers.BooleanField())
    )
    quiet_hours = QuietHoursSerializer(allow_null=True)
    daily_limit = serializers.IntegerField(allow_null=True)
    digest = serializers.DictField(child=serializers.CharField())

    @staticmethod
    def data_for(pref: Preference | None) -> dict[str, Any]:
        if pref is None:
            return {
                "channels": {},
                "categories": {},
                "quiet_hours": None,
                "daily_limit": None,
                "digest": {},
            }
        quiet = None
        if pref.quiet_start is not None and pref.quiet_end is not None:
            quiet = {
                "start": pref.quiet_start.strftime("%H:%M"),
                "end": pref.quiet_end.strftime("%H:%M"),
            }
        return {
            "channels": pref.channels,
            "categories": pref.categories,
            "quiet_hours": quiet,
            "daily_limit": pref.daily_limit,
            "digest": pref.digest,
        }


class DeviceWriteSerializer(serializers.Serializer[Any]):
    token = StrictCharField(max_length=DEVICE_TOKEN_MAX, validators=[validate_device_token])
    platform = serializers.ChoiceField(choices=Device.Platform.choices)


class DeviceSerializer(serializers.ModelSerializer[Device]):
    class Meta:
        model = Device
        fields = ["token", "platform", "active", "last_seen_at", "created_at"]


class TokenRequestSerializer(serializers.Serializer[Any]):
    ttl_seconds = StrictIntegerField(required=False, min_value=60, max_value=30 * 24 * 3600)


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
