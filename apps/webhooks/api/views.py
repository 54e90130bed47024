"""Webhook endpoints API: a client's endpoints (each client sees only its own: another client's
is a 404), their secret, a test ping, and their messages with dead-letter replay."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import request_client
from apps.core.pagination import KeysetPagination
from apps.core.schema import ErrorSerializer
from apps.webhooks.api.serializers import (
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    MessageFilterSerializer,
    MessageSerializer,
)
from apps.webhooks.models import MessageStatus, WebhookEndpoint
from apps.webhooks.selectors import endpoint_get, endpoints_list, messages_list
from apps.webhooks.services import (
    endpoint_create,
    endpoint_delete,
    endpoint_ping,
    endpoint_rotate_secret,
    endpoint_update,
    message_replay,
)

CREATE_EXAMPLE = OpenApiExample(
    "Deliveries that failed or died",
    request_only=True,
    value={
        "url": "https://example.com/hooks/notifier",
        "events": ["delivery.failed", "delivery.dead"],
        "description": "on-call alerts",
    },
)


def _endpoint(request: Request, endpoint_id: Any) -> WebhookEndpoint:
    return endpoint_get(client=request_client(request), endpoint_id=endpoint_id)


def _with_secret(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return dict(EndpointWithSecretSerializer(endpoint).data)


class EndpointListView(APIView):
    pagination_class = KeysetPagination  # for the OpenAPI schema: the list is paginated

    @extend_schema(responses={200: EndpointSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """The caller's webhook endpoints, newest first (secrets are never shown again)."""
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(
            endpoints_list(client=request_client(request)), request, view=self
        )
        return paginator.get_paginated_response(EndpointSerializer(page, many=True).data)

    @extend_schema(
        request=EndpointCreateSerializer,
        responses={201: EndpointWithSecretSerializer},
        examples=[CREATE_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        """Register an endpoint. The answer carries its signing secret, shown only this once."""
        body = EndpointCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        endpoint = endpoint_create(
            client=request_client(request),
            url=data["url"],
            events_=data["events"],
            description=data["description"],
            include_content=data["include_content"],
        )
        return Response(_with_secret(endpoint), status=status.HTTP_201_CREATED)


class EndpointView(APIView):
    @extend_schema(responses={200: EndpointSerializer})
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(EndpointSerializer(_endpoint(request, endpoint_id)).data)

    @extend_schema(request=EndpointUpdateSerializer, responses={200: EndpointSerializer})
    def patch(self, request: Request, endpoint_id: str) -> Response:
        """Change the URL, the events, the description, `include_content` or `enabled`
        (enabling an endpoint the service disabled starts it afresh)."""
        endpoint = _endpoint(request, endpoint_id)
        body = EndpointUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = endpoint_update(endpoint=endpoint, changes=dict(body.validated_data))
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: str) -> Response:
        """Delete the endpoint, its messages and its attempt log."""
        endpoint_delete(endpoint=_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(APIView):
    @extend_schema(
        operation_id="webhook_endpoint_rotate_secret",
        request=None,
        responses={200: EndpointWithSecretSerializer},
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        """A new signing secret, shown once; the old one also signs for 24 hours (each message
        then carries both signatures), so receivers can switch without losing any."""
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        endpoint = _endpoint(request, endpoint_id)
        endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        return Response(_with_secret(endpoint))


class TestView(APIView):
    @extend_schema(
        operation_id="webhook_endpoint_test",
        request=None,
        responses={
            202: MessageSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The endpoint is disabled."),
        },
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        """Queue a `ping` event to the endpoint; its delivery shows in the messages."""
        _ = request.data
        message = endpoint_ping(endpoint=_endpoint(request, endpoint_id))
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class MessageListView(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=MessageStatus.values)],
        responses={200: MessageSerializer(many=True)},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        """The endpoint's messages, newest first; `?status=dead` lists its dead letters."""
        endpoint = _endpoint(request, endpoint_id)
        filters = MessageFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        paginator = KeysetPagination()
        rows = messages_list(endpoint=endpoint, status=filters.validated_data.get("status"))
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)


class MessageReplayView(APIView):
    @extend_schema(
        operation_id="webhook_message_replay",
        request=None,
        responses={
            200: MessageSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Not dead, or the endpoint is disabled."
            ),
        },
    )
    def post(self, request: Request, endpoint_id: str, message_id: str) -> Response:
        """Queue a dead message again for a fresh series of attempts (same event id)."""
        _ = request.data
        endpoint = _endpoint(request, endpoint_id)
        message = message_replay(
            endpoint=endpoint,
            event_id=message_id,
            replayed_by=f"api:{request_client(request).name}",
        )
        return Response(MessageSerializer(message).data)
