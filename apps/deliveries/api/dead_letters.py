"""Dead letters for operators (ops API keys only): list, replay one, replay in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import IsOpsClient, request_client
from apps.core.pagination import StrictCursorPagination
from apps.core.schema import ErrorSerializer
from apps.core.validation import BIGINT_MAX
from apps.deliveries.backpressure import backpressure_check
from apps.deliveries.dead_letters import dead_letter_replay, dead_letters_replay
from apps.deliveries.models import DeadLetter
from apps.deliveries.selectors import dead_letters_list
from notifier.types import Channel

CHANNELS = [c.value for c in Channel]


class DeadLetterSerializer(serializers.ModelSerializer[Any]):
    delivery = serializers.UUIDField(source="delivery_id")
    notification = serializers.UUIDField(source="delivery.notification_id")
    recipient = serializers.CharField(source="delivery.recipient.external_id")
    delivery_status = serializers.CharField(source="delivery.status")

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "delivery",
            "notification",
            "recipient",
            "channel",
            "reason",
            "last_error",
            "attempts",
            "created_at",
            "replayed_at",
            "replayed_by",
            "delivery_status",
        ]


class DeadLetterFilterSerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=CHANNELS, required=False)
    reason = serializers.CharField(max_length=200, required=False)
    replayed = serializers.BooleanField(required=False)


class BulkReplaySerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        min_length=1,
        max_length=1000,
    )
    channel = serializers.ChoiceField(choices=CHANNELS, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("channel" in attrs):
            raise serializers.ValidationError("give exactly one of 'ids' or 'channel'")
        return attrs


class BulkReplayResultSerializer(serializers.Serializer[Any]):
    replayed = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField())
    not_replayed = serializers.ListField(child=serializers.IntegerField())


class DeadLetterPagination(StrictCursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


def _actor(request: Request) -> str:
    return f"api:{request_client(request).name}"


class DeadLetterListView(APIView):
    permission_classes = [IsOpsClient]
    pagination_class = DeadLetterPagination  # for the OpenAPI schema: the list is paginated

    @extend_schema(
        parameters=[
            OpenApiParameter("channel", str, enum=CHANNELS),
            OpenApiParameter("reason", str, description="part of the reason"),
            OpenApiParameter("replayed", bool),
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
        ],
        responses={200: DeadLetterSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict: DRF reads "" in a QueryDict as "absent"; here it is a bad value.
        filters = DeadLetterFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        paginator = DeadLetterPagination()
        page = paginator.paginate_queryset(dead_letters_list(**filters.validated_data), request)
        return paginator.get_paginated_response(DeadLetterSerializer(page, many=True).data)


class DeadLetterReplayView(APIView):
    permission_classes = [IsOpsClient]

    @extend_schema(
        operation_id="dead_letter_replay",
        request=None,
        responses={
            200: DeadLetterSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Replayed already, or the delivery is not dead."
            ),
        },
    )
    def post(self, request: Request, dead_letter_id: int) -> Response:
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        backpressure_check()  # 503 with Retry-After before anything is replayed
        dead_letter = dead_letter_replay(dead_letter_id=dead_letter_id, replayed_by=_actor(request))
        fresh = dead_letters_list().get(pk=dead_letter.pk)
        return Response(DeadLetterSerializer(fresh).data)


class DeadLetterBulkReplayView(APIView):
    permission_classes = [IsOpsClient]

    @extend_schema(
        operation_id="dead_letters_replay",
        request=BulkReplaySerializer,
        responses={200: BulkReplayResultSerializer},
    )
    def post(self, request: Request) -> Response:
        body = BulkReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        backpressure_check()  # 503 with Retry-After before anything is replayed
        ids: Sequence[int] | None = body.validated_data.get("ids")
        replayed = dead_letters_replay(
            replayed_by=_actor(request), ids=ids, channel=body.validated_data.get("channel")
        )
        done = [dl.pk for dl in replayed]
        done_set = set(done)
        not_replayed = [i for i in dict.fromkeys(ids or []) if i not in done_set]
        return Response({"replayed": len(done), "ids": done, "not_replayed": not_replayed})
