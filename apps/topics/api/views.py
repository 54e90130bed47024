"""Topics API: a client's topics and their subscribers (each client sees only its own)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import request_client
from apps.core.errors import InvalidInput, NotFound
from apps.core.pagination import KeysetPagination
from apps.topics.api.serializers import (
    KEY_RULE,
    RecipientsSerializer,
    SubscribersChangedSerializer,
    SubscriberSerializer,
    SubscribeSerializer,
    TopicSerializer,
    TopicWriteSerializer,
    valid_topic_key,
)
from apps.topics.models import Topic
from apps.topics.selectors import subscriber_count, topic_get, topic_subscriptions, topics_list
from apps.topics.services import subscribers_add, subscribers_remove, topic_delete, topic_put

RECIPIENTS_EXAMPLE = OpenApiExample(
    "Two recipients", request_only=True, value={"recipients": ["user-1", "user-2"]}
)
SUBSCRIBE_EXAMPLES = [
    RECIPIENTS_EXAMPLE,
    OpenApiExample(
        "An id and an inline recipient",
        request_only=True,
        value={
            "recipients": [
                "user-1",
                {"id": "user-3", "email": "ana@example.com", "locale": "pt-BR"},
            ]
        },
    ),
]


def _check_key(key: str) -> None:
    if not valid_topic_key(key):
        raise InvalidInput("Invalid topic key.", fields={"key": [KEY_RULE]})


def _topic_or_404(request: Request, key: str) -> Topic:
    _check_key(key)
    topic = topic_get(client=request_client(request), key=key)
    if topic is None:
        raise NotFound(f"No topic {key!r}.")
    return topic


def _shown(topic: Topic) -> dict[str, object]:
    topic.subscriber_count = subscriber_count(topic=topic)  # type: ignore[attr-defined]
    return dict(TopicSerializer(topic).data)


class TopicListView(APIView):
    pagination_class = KeysetPagination  # for the OpenAPI schema: the list is paginated
    pagination_ordering = ("key", "id")

    @extend_schema(responses={200: TopicSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """The caller's topics by key, each with its subscriber count."""
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(
            topics_list(client=request_client(request)), request, view=self
        )
        return paginator.get_paginated_response(TopicSerializer(page, many=True).data)


class TopicView(APIView):
    @extend_schema(
        request=TopicWriteSerializer,
        responses={200: TopicSerializer, 201: TopicSerializer},
        examples=[
            OpenApiExample(
                "An order's watchers",
                request_only=True,
                value={"name": "Order 123", "description": "Everyone following order 123"},
            )
        ],
    )
    def put(self, request: Request, key: str) -> Response:
        """Create the topic or update the fields given."""
        _check_key(key)
        serializer = TopicWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        topic, created = topic_put(
            client=request_client(request),
            key=key,
            name=serializer.validated_data.get("name"),
            description=serializer.validated_data.get("description"),
        )
        return Response(
            _shown(topic), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={200: TopicSerializer})
    def get(self, request: Request, key: str) -> Response:
        return Response(_shown(_topic_or_404(request, key)))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        """Delete the topic and its subscriptions (notifications already sent are kept)."""
        topic_delete(topic=_topic_or_404(request, key))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscribersView(APIView):
    pagination_class = KeysetPagination
    pagination_ordering = ("recipient_id",)

    @extend_schema(responses={200: SubscriberSerializer(many=True)})
    def get(self, request: Request, key: str) -> Response:
        """The topic's subscribers, in a stable order (`?cursor=` from `next`)."""
        topic = _topic_or_404(request, key)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(topic_subscriptions(topic=topic), request, view=self)
        return paginator.get_paginated_response(SubscriberSerializer(page, many=True).data)

    @extend_schema(
        request=SubscribeSerializer,
        responses={200: SubscribersChangedSerializer},
        examples=SUBSCRIBE_EXAMPLES,
    )
    def post(self, request: Request, key: str) -> Response:
        """Subscribe up to 1000 recipients, each an external id or an inline object that
        creates or updates the recipient in the same transaction (idempotent; an unknown id
        or an invalid object is a 400 and nothing changes)."""
        topic = _topic_or_404(request, key)
        serializer = SubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        added = subscribers_add(
            topic=topic,
            external_ids=serializer.validated_data["recipients"],
            profiles=serializer.validated_data["profiles"],
        )
        return Response(
            {"topic": topic.key, "added": added, "subscribers": subscriber_count(topic=topic)}
        )

    @extend_schema(
        request=RecipientsSerializer,
        responses={200: SubscribersChangedSerializer},
        examples=[RECIPIENTS_EXAMPLE],
    )
    def delete(self, request: Request, key: str) -> Response:
        """Unsubscribe up to 1000 recipients (those not subscribed are ignored)."""
        topic = _topic_or_404(request, key)
        serializer = RecipientsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        removed = subscribers_remove(
            topic=topic, external_ids=serializer.validated_data["recipients"]
        )
        return Response(
            {"topic": topic.key, "removed": removed, "subscribers": subscriber_count(topic=topic)}
        )
