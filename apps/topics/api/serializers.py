"""Validation and shapes of the topics API."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from apps.core.fields import StrictCharField
from apps.recipients.api.refs import RecipientRefField, errors_named, recipients_split
from apps.topics.models import KEY_MAX, Subscription, Topic

MAX_SUBSCRIBERS_PER_CALL = 1000
# A topic key names a thing in the client's domain ("order-123-watchers"): URL-safe, no spaces.
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")  # fullmatch: `$` took "key\n"
KEY_RULE = f"1 to {KEY_MAX} characters: letters, digits and . _ : - (not first)"


def valid_topic_key(key: str) -> bool:
    return len(key) <= KEY_MAX and bool(KEY_RE.fullmatch(key))


class TopicKeyField(StrictCharField):
    """A topic key in a body (the notification's `topic`), matched whole: not trimmed, so that
    "t1\n" is refused as the path's key is, not read as "t1"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=KEY_MAX, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not KEY_RE.fullmatch(value):
            raise serializers.ValidationError(KEY_RULE)
        return value


class TopicWriteSerializer(serializers.Serializer[Any]):
    """PUT body: both optional; the ones given are set."""

    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)


class TopicSerializer(serializers.ModelSerializer[Topic]):
    subscribers = serializers.IntegerField(
        source="subscriber_count", read_only=True, help_text="How many recipients follow it."
    )

    class Meta:
        model = Topic
        fields = ["key", "name", "description", "subscribers", "created_at", "updated_at"]


class SubscribeSerializer(serializers.Serializer[Any]):
    """POST body: `{"recipients": [external ids or inline objects]}`, 1 to 1000 of them.
    Validated: `recipients` (the external ids in order) and `profiles` (the inline objects'
    fields by external id, to upsert)."""

    recipients = serializers.ListField(
        child=RecipientRefField(),
        min_length=1,
        max_length=MAX_SUBSCRIBERS_PER_CALL,
        help_text="Recipients: an external id (the recipient must exist), or an object that "
        "creates or updates the recipient in the same transaction, as inline recipients of "
        "POST /api/v1/notifications.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            raise serializers.ValidationError(errors_named(dict(detail))) from exc
        attrs["recipients"], attrs["profiles"] = recipients_split(
            attrs["recipients"], name="recipients"
        )
        return attrs


class RecipientsSerializer(serializers.Serializer[Any]):
    """DELETE body: `{"recipients": [external ids]}`, 1 to 1000 of them."""

    recipients = serializers.ListField(
        child=StrictCharField(max_length=200),
        min_length=1,
        max_length=MAX_SUBSCRIBERS_PER_CALL,
        help_text="Recipients' external ids.",
    )


class SubscribersChangedSerializer(serializers.Serializer[Any]):
    topic = serializers.CharField()
    added = serializers.IntegerField(required=False, help_text="Newly subscribed (POST).")
    removed = serializers.IntegerField(required=False, help_text="Unsubscribed (DELETE).")
    subscribers = serializers.IntegerField(help_text="The topic's subscribers now.")


class SubscriberSerializer(serializers.ModelSerializer[Subscription]):
    recipient = serializers.CharField(source="recipient.external_id")
    subscribed_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Subscription
        fields = ["recipient", "subscribed_at"]
