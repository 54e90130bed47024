"""The recipient's inbox over REST (`Authorization: Recipient <token>`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.inbox.api.serializers import (
    InboxListQuerySerializer,
    InboxMessageSerializer,
    InboxPageSerializer,
    ReadAllSerializer,
    SeenResultSerializer,
    SeenSerializer,
    UnreadCountSerializer,
)
from apps.inbox.selectors import inbox_page, inbox_unread_count, inbox_unseen_count
from apps.inbox.services import (
    inbox_mark_seen,
    inbox_message_archive,
    inbox_message_read,
    inbox_read_all,
)
from apps.recipients.auth import IsRecipient, request_recipient


class RecipientView(APIView):
    # Default authenticators: a service's API key is recognised, then refused (403).
    permission_classes = [IsRecipient]


class InboxListView(RecipientView):
    @extend_schema(
        parameters=[InboxListQuerySerializer],
        responses={200: InboxPageSerializer},
        description="Newest first. `next` is the URL of the following page (null at the end). "
        "Archived messages are listed only with `status=archived`; `unread_count` never counts "
        "them.",
    )
    def get(self, request: Request) -> Response:
        query = InboxListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        recipient = request_recipient(request)
        rows, more = inbox_page(
            recipient=recipient,
            before_id=params.get("cursor"),
            limit=params["limit"],
            unread_only=params["unread"],
            status=params.get("status"),
        )
        next_url = None
        if more and rows:
            next_query = request.query_params.copy()
            next_query["cursor"] = str(rows[-1].id)
            next_url = request.build_absolute_uri(f"{request.path}?{next_query.urlencode()}")
        return Response(
            {
                "results": InboxMessageSerializer(rows, many=True).data,
                "next": next_url,
                "unread_count": inbox_unread_count(recipient_id=recipient.pk),
            }
        )


class InboxUnreadCountView(RecipientView):
    @extend_schema(responses={200: UnreadCountSerializer})
    def get(self, request: Request) -> Response:
        recipient = request_recipient(request)
        return Response({"count": inbox_unread_count(recipient_id=recipient.pk)})


class InboxReadView(RecipientView):
    @extend_schema(
        request=None,
        responses={200: InboxMessageSerializer},
        parameters=[OpenApiParameter("message_id", int, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, message_id: int) -> Response:
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        message = inbox_message_read(recipient=request_recipient(request), message_id=message_id)
        return Response(InboxMessageSerializer(message).data)


class InboxArchiveView(RecipientView):
    archived = True

    @extend_schema(
        request=None,
        responses={200: InboxMessageSerializer},
        parameters=[OpenApiParameter("message_id", int, OpenApiParameter.PATH)],
        description="Archive the message (idempotent): it leaves the default listing and the "
        "unread and unseen counts, and is listed with `status=archived`. Read and seen stay "
        "as they were.",
    )
    def post(self, request: Request, message_id: int) -> Response:
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        message = inbox_message_archive(
            recipient=request_recipient(request), message_id=message_id, archived=self.archived
        )
        return Response(InboxMessageSerializer(message).data)


class InboxUnarchiveView(InboxArchiveView):
    archived = False

    @extend_schema(
        request=None,
        responses={200: InboxMessageSerializer},
        parameters=[OpenApiParameter("message_id", int, OpenApiParameter.PATH)],
        description="Bring an archived message back into the listing and the counts (idempotent).",
    )
    def post(self, request: Request, message_id: int) -> Response:
        return super().post(request, message_id)


class InboxReadAllView(RecipientView):
    @extend_schema(request=None, responses={200: ReadAllSerializer})
    def post(self, request: Request) -> Response:
        _ = request.data  # no body expected, but a malformed one is a 400 (415 if not JSON)
        recipient = request_recipient(request)
        updated = inbox_read_all(recipient=recipient)
        return Response(
            {"updated": updated, "unread_count": inbox_unread_count(recipient_id=recipient.pk)}
        )


class InboxSeenView(RecipientView):
    @extend_schema(
        request=SeenSerializer,
        responses={200: SeenResultSerializer},
        description="The bell was opened: mark the listed messages seen (send the ids it "
        "shows; without `ids`, every message of the recipient, shown or not). Escalation "
        'steps waiting on `"unless": "seen"` are cancelled.',
        examples=[OpenApiExample("Two messages", value={"ids": [41, 42]}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        body = SeenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        recipient = request_recipient(request)
        updated = inbox_mark_seen(recipient=recipient, message_ids=body.validated_data.get("ids"))
        return Response(
            {
                "updated": updated,
                "unseen_count": inbox_unseen_count(recipient_id=recipient.pk),
                "unread_count": inbox_unread_count(recipient_id=recipient.pk),
            }
        )
