from __future__ import annotations

from contextlib import nullcontext
from typing import Any
from uuid import UUID

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import request_client, throttle_read
from apps.core.errors import InvalidInput, NotFound
from apps.core.pagination import KeysetPagination
from apps.core.schema import ErrorSerializer
from apps.deliveries.api.accepted import NotificationAcceptedSerializer
from apps.deliveries.api.serializers import (
    DeliverySerializer,
    NotificationCreateSerializer,
    NotificationFilterSerializer,
    NotificationListItemSerializer,
    NotificationSerializer,
)
from apps.deliveries.backpressure import backpressure_check
from apps.deliveries.models import Notification
from apps.deliveries.queueing import request_publishes
from apps.deliveries.selectors import (
    notification_deliveries,
    notification_detail,
    notifications_list,
    notifications_status_counts,
)
from apps.deliveries.services import NotificationRequest, notification_cancel, notification_create
from apps.templates.cache import GENERATION_KEY, generation_read

IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=(
        "Makes the request safe to retry: the same key with the same body returns the "
        "original 202; with a different body, 409. Same as the body field `idempotency_key`."
    ),
)


CREATE_EXAMPLES = [
    OpenApiExample(
        "One recipient",
        request_only=True,
        value={
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email", "push"],
            "priority": "high",
        },
    ),
    OpenApiExample(
        "Many recipients, later, with a fallback",
        request_only=True,
        value={
            "recipients": ["user-1", "user-2"],
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["push"],
            "fallback": ["sms"],
            "send_at": "2030-01-01T09:00:00+00:00",
        },
    ),
    OpenApiExample(
        "An inline recipient (created or updated with the notification)",
        request_only=True,
        value={
            "recipient": {
                "id": "user-9",
                "email": "ada@example.com",
                "locale": "en-GB",
                "timezone": "Europe/London",
                "name": "Ada",
            },
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["email"],
        },
    ),
    OpenApiExample(
        "Known ids, inline recipients and an unknown id (skipped unless strict)",
        request_only=True,
        value={
            "recipients": [
                "user-1",
                {"id": "user-2", "phone": "+14155552671", "data": {"plan": "pro"}},
                "no-such-user",
            ],
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "strict": False,
        },
    ),
    OpenApiExample(
        "Accepted with an unknown recipient skipped",
        response_only=True,
        status_codes=["202"],
        description=(
            '`recipients: ["user-1", "no-such-user"]`, `channels: ["email"]`: each '
            "requested channel of the unknown id is listed in `deliveries` as `skipped` with no "
            "id (it is no row), and the id in `skipped`."
        ),
        value={
            "id": "0b8f7a52-6d5e-4a7e-9f7e-3c1d2b4a5e6f",
            "status": "accepted",
            "deliveries": [
                {
                    "id": "5f0c2a8e-1b7d-4c3e-9a6f-2d8b4e1c7a90",
                    "recipient": "user-1",
                    "channel": "email",
                    "status": "queued",
                    "reason": "",
                },
                {
                    "id": None,
                    "recipient": "no-such-user",
                    "channel": "email",
                    "status": "skipped",
                    "reason": "unknown_recipient",
                },
            ],
            "skipped": [{"recipient": "no-such-user", "reason": "unknown_recipient"}],
        },
    ),
    OpenApiExample(
        "A bad field of an inline recipient",
        response_only=True,
        status_codes=["400"],
        value={
            "code": "invalid",
            "message": "Invalid input.",
            "fields": {"recipients[1].phone": ["'+1555' is not a valid phone number."]},
        },
    ),
    OpenApiExample(
        "Every subscriber of a topic but the actor",
        request_only=True,
        value={
            "topic": "order-123-watchers",
            "exclude": ["user-1"],
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["inapp", "email"],
        },
    ),
    OpenApiExample(
        "Accepted for a topic",
        response_only=True,
        status_codes=["202"],
        value={
            "id": "7d0c3f7e-3b8e-4a53-9d4e-2f1f8b0b6c11",
            "status": "accepted",
            "recipients": "fan-out",
            "topic": "order-123-watchers",
            "expected": 2000,
        },
    ),
    OpenApiExample(
        "Throttled: one per thread and recipient in 10 minutes",
        request_only=True,
        description="Later ones in the window are `skipped`, reason `throttled`; `critical` "
        "bypasses. Without `throttle`, the template's applies; `false` switches it off.",
        value={
            "recipient": "user-1",
            "template": "new_reply",
            "variables": {"thread_id": "t-42"},
            "throttle": {"limit": 1, "window": "10m", "key": "{{ thread_id }}"},
        },
    ),
    OpenApiExample(
        "In-app now, escalated to email then SMS while unread",
        request_only=True,
        description="Each step is a `scheduled` delivery; reading the in-app message, or an "
        "open/click the provider reports, cancels the pending ones (reason `engaged`).",
        value={
            "recipient": "user-1",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["inapp"],
            "escalation": [
                {"after": "30m", "channels": ["email"], "unless": "read"},
                {"after": "2h", "channels": ["sms"], "unless": "read"},
            ],
        },
    ),
    OpenApiExample(
        "Into a digest (one per post, sent 10 minutes after the first)",
        request_only=True,
        value={
            "recipient": "user-1",
            "template": "new_comment",
            "variables": {"post_id": "p-1", "post_title": "Launch plan", "author": "Grace"},
            "channels": ["email", "inapp"],
            "digest": {"window": "10m", "key": "{{ post_id }}", "max_items": 20},
        },
    ),
    OpenApiExample(
        "Joined a digest",
        response_only=True,
        status_codes=["202"],
        value={
            "id": "0b7f2a56-4c8e-4f0e-9a51-2f4de1c3b0aa",
            "status": "accepted",
            "deliveries": [
                {
                    "id": "5d1c8c1e-7c53-4d0f-8f0e-0e4a3d1c9b21",
                    "recipient": "user-1",
                    "channel": "email",
                    "status": "digested",
                    "reason": "joined a digest",
                }
            ],
        },
    ),
    OpenApiExample(
        "A topic with a throttle and an escalation step",
        request_only=True,
        value={
            "topic": "order-123-watchers",
            "template": "order_shipped",
            "variables": {"order_id": "A-1"},
            "channels": ["inapp"],
            "throttle": {"limit": 1, "window": "10m", "key": "{{ order_id }}"},
            "escalation": [{"after": "30m", "channels": ["email"], "unless": "read"}],
        },
    ),
]


def _idempotency_key(request: Request, body_key: str | None) -> str | None:
    """The key from the header or the body; both given must agree."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return body_key
    header = header.strip()
    if not header or len(header) > IDEMPOTENCY_KEY_MAX or not header.isprintable():
        raise InvalidInput(
            "Invalid Idempotency-Key header.",
            fields={
                "idempotency_key": [f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters"]
            },
        )
    if body_key is not None and body_key != header:
        raise InvalidInput(
            "The Idempotency-Key header and the body's idempotency_key differ.",
            fields={"idempotency_key": ["differs from the Idempotency-Key header"]},
        )
    return header


def _visible_notification(request: Request, notification_id: UUID) -> Notification:
    notification = notification_detail(
        client=request_client(request), notification_id=str(notification_id)
    )
    if notification is None:
        raise NotFound("No such notification.")
    return notification


class NotificationListCreateView(APIView):
    pagination_class = KeysetPagination

    @property
    def throttle_reads(self) -> tuple[str, ...]:
        """A POST needs the template cache's token: the API throttle reads it in its own Redis
        call (apps.clients.auth.THROTTLE_READ), one round trip fewer per request."""
        return (GENERATION_KEY,) if self.request.method == "POST" else ()

    @extend_schema(
        request=NotificationCreateSerializer,
        responses={
            202: NotificationAcceptedSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input; an inline recipient's bad field is named by index "
                "and field (`recipients[1].phone`).",
            ),
            409: OpenApiResponse(
                ErrorSerializer, description="Idempotency key reused with a different body."
            ),
        },
        parameters=[IDEMPOTENCY_HEADER],
        examples=CREATE_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        """Send a template to one recipient, up to 1000, or every subscriber of a topic (fanned
        out by a worker: see `fan_out` in the notification), on some or all of its channels.
        The throttle, digest and escalation (the template's or the request's) apply to a
        topic's subscribers as to listed recipients.

        Each recipient is an external id or an inline object that creates or updates the
        recipient in the same transaction. Unknown ids are reported in `skipped` (reason
        `unknown_recipient`) and, for each requested channel, in `deliveries` as `skipped` with
        `id` null (not rows: delivery filters never find them); the rest are sent, unless
        `strict` is true or no recipient is known (then 400 and nothing is written)."""
        backpressure_check()  # 503 with Retry-After before anything is created
        serializer = NotificationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        data["idempotency_key"] = _idempotency_key(request, data.get("idempotency_key"))
        read = throttle_read(request) or {}
        token = generation_read(read[GENERATION_KEY]) if GENERATION_KEY in read else nullcontext()
        # The publish after commit is fail-fast: a hung broker costs the request one short try,
        # the reconciler re-queues what it did not take.
        with token, request_publishes():
            body, created = notification_create(
                client=request_client(request), request=NotificationRequest(**data)
            )
        response = Response(body, status=status.HTTP_202_ACCEPTED)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        parameters=[NotificationFilterSerializer],
        responses={200: NotificationListItemSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Notifications newest first, filtered by recipient, delivery status and channel."""
        # A plain dict: DRF reads "" in a QueryDict as "absent"; here it is a bad value.
        filters = NotificationFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        queryset = notifications_list(client=request_client(request), **filters.validated_data)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        counts = notifications_status_counts(notification_ids=[str(n.id) for n in page])
        data = NotificationListItemSerializer(
            page, many=True, context={"status_counts": counts}
        ).data
        return paginator.get_paginated_response(data)


class NotificationDetailView(APIView):
    @extend_schema(responses={200: NotificationSerializer})
    def get(self, request: Request, notification_id: UUID) -> Response:
        """The notification with each delivery, its attempts and its timeline, then one
        `skipped` entry (id null, reason `unknown_recipient`) per channel of each unknown id.
        A topic's notification lists its first 100 deliveries (see `deliveries_truncated`)."""
        notification = _visible_notification(request, notification_id)
        return Response(NotificationSerializer(notification).data)


class NotificationDeliveriesView(APIView):
    pagination_class = KeysetPagination
    pagination_ordering = ("created_at", "id")

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    def get(self, request: Request, notification_id: UUID) -> Response:
        """Every delivery of the notification, oldest first, a page at a time (a topic's
        notification itself lists only the first 100)."""
        queryset = notification_deliveries(
            client=request_client(request), notification_id=str(notification_id)
        )
        if queryset is None:
            raise NotFound("No such notification.")
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class NotificationCancelView(APIView):
    @extend_schema(request=None, responses={200: NotificationSerializer})
    def post(self, request: Request, notification_id: UUID) -> Response:
        """Cancel every delivery not yet handed to a provider; returns the notification."""
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        notification = _visible_notification(request, notification_id)
        notification_cancel(notification=notification)
        refreshed = _visible_notification(request, notification_id)
        return Response(NotificationSerializer(refreshed).data)
