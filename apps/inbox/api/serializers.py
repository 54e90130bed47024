from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.validation import BIGINT_MAX
from apps.inbox.models import InboxMessage
from apps.inbox.selectors import InboxStatus


class InboxMessageSerializer(serializers.ModelSerializer[InboxMessage]):
    read = serializers.SerializerMethodField()

    class Meta:
        model = InboxMessage
        fields = [
            "id",
            "title",
            "body",
            "data",
            "created_at",
            "read_at",
            "seen_at",
            "archived_at",
            "read",
        ]

    def get_read(self, message: InboxMessage) -> bool:
        return message.read_at is not None


class InboxPageSerializer(serializers.Serializer[object]):
    results = InboxMessageSerializer(many=True)
    next = serializers.CharField(allow_null=True)
    unread_count = serializers.IntegerField()


class InboxListQuerySerializer(serializers.Serializer[object]):
    cursor = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    unread = serializers.BooleanField(required=False, default=False)
    status = serializers.ChoiceField(
        choices=InboxStatus.choices,
        required=False,
        help_text="`unread` or `unseen`: only those (archived ones excluded); `archived`: only "
        "archived messages. Absent: every message that is not archived.",
    )

    def to_internal_value(self, data: Any) -> Any:
        # DRF skips an empty query value (`?cursor=`) as if it were absent: reject it instead.
        empty: dict[str, list[str]] = {
            str(name): ["This field may not be blank."]
            for name in self.fields
            if data.get(name) == ""
        }
        if empty:
            raise serializers.ValidationError(empty)
        return super().to_internal_value(data)


class UnreadCountSerializer(serializers.Serializer[object]):
    count = serializers.IntegerField()


class ReadAllSerializer(serializers.Serializer[object]):
    updated = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class SeenSerializer(serializers.Serializer[object]):
    """`POST /inbox/seen`: the listed messages, or all (no `ids`)."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        max_length=1000,
        help_text="Message ids to mark seen; absent: every message of the recipient.",
    )


class SeenResultSerializer(serializers.Serializer[object]):
    updated = serializers.IntegerField()
    unseen_count = serializers.IntegerField()
    unread_count = serializers.IntegerField()
