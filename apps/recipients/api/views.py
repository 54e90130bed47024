"""Recipients API: profile (service keys), preferences and devices (service or recipient)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clients.auth import IsServiceClient, request_client
from apps.core.errors import InvalidInput, NotFound
from apps.recipients.api.serializers import (
    DeviceSerializer,
    DeviceWriteSerializer,
    PreferenceSerializer,
    PreferenceWriteSerializer,
    RecipientDetailSerializer,
    RecipientSerializer,
    RecipientWriteSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from apps.recipients.auth import IsRecipient, RecipientPrincipal
from apps.recipients.models import Recipient
from apps.recipients.selectors import (
    recipient_described,
    recipient_get,
    recipient_preference,
)
from apps.recipients.services import (
    device_register,
    device_remove,
    preference_update_announced,
    recipient_erase,
    recipient_upsert,
)
from apps.recipients.tokens import recipient_token_mint

EXTERNAL_ID_MAX = 200


def _check_external_id(external_id: str) -> None:
    if len(external_id) > EXTERNAL_ID_MAX or not external_id.isprintable():
        raise InvalidInput(
            "Invalid external id.",
            fields={"external_id": [f"At most {EXTERNAL_ID_MAX} printable characters."]},
        )


def recipient_for(request: Request, external_id: str) -> Recipient:
    """The recipient named in the path, as the caller may see it (404 otherwise).
    A recipient token reaches only its own recipient (403 for any other)."""
    _check_external_id(external_id)
    if isinstance(request.user, RecipientPrincipal):
        own = request.user.recipient
        if own.external_id != external_id:
            raise exceptions.PermissionDenied(
                "A recipient token may only access its own recipient."
            )
        return own
    recipient = recipient_get(client=request_client(request), external_id=external_id)
    if recipient is None:
        raise NotFound(f"No recipient {external_id!r}.")
    return recipient


def _detail(recipient: Recipient) -> dict[str, Any]:
    return {**RecipientSerializer(recipient).data, **recipient_described(recipient=recipient)}


def _body(request: Request) -> Any:
    # A JSON body that is not an object (a list, a string) fails the serializer with 400.
    return request.data


class RecipientView(APIView):
    @extend_schema(
        request=RecipientWriteSerializer,
        responses={200: RecipientDetailSerializer, 201: RecipientDetailSerializer},
        description="Create or update a recipient. Fields not given keep their value.",
    )
    def put(self, request: Request, external_id: str) -> Response:
        _check_external_id(external_id)
        serializer = RecipientWriteSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        recipient, created = recipient_upsert(
            client=request_client(request),
            external_id=external_id,
            profile=serializer.validated_data,
        )
        return Response(
            _detail(recipient),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(responses={200: RecipientDetailSerializer})
    def get(self, request: Request, external_id: str) -> Response:
        return Response(_detail(recipient_for(request, external_id)))

    @extend_schema(
        responses={204: None},
        description="GDPR erasure: devices, preferences, contact fields and inbox are deleted; "
        "delivery history is anonymised.",
    )
    def delete(self, request: Request, external_id: str) -> Response:
        recipient_erase(recipient=recipient_for(request, external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreferencesView(APIView):
    permission_classes = [IsServiceClient | IsRecipient]

    @extend_schema(responses={200: PreferenceSerializer})
    def get(self, request: Request, external_id: str) -> Response:
        recipient = recipient_for(request, external_id)
        return Response(PreferenceSerializer.data_for(recipient_preference(recipient=recipient)))

    @extend_schema(
        request=PreferenceWriteSerializer,
        responses={200: PreferenceSerializer},
        description="Set the keys given; keys not given keep their value.",
        examples=[
            OpenApiExample(
                "Digest cadences per category (the recipient's timezone)",
                request_only=True,
                value={
                    "digest": {"social": "daily@09:00", "marketing": "hourly", "billing": "off"}
                },
            )
        ],
    )
    def put(self, request: Request, external_id: str) -> Response:
        recipient = recipient_for(request, external_id)
        serializer = PreferenceWriteSerializer.editing(
            recipient_preference(recipient=recipient), data=_body(request)
        )
        serializer.is_valid(raise_exception=True)
        pref = preference_update_announced(
            recipient=recipient, changes=serializer.validated_data, source="api"
        )
        return Response(PreferenceSerializer.data_for(pref))


class DevicesView(APIView):
    permission_classes = [IsServiceClient | IsRecipient]

    @extend_schema(
        request=DeviceWriteSerializer,
        responses={200: DeviceSerializer, 201: DeviceSerializer},
        description="Register a push token (at most 2,048 visible ASCII characters). "
        "Idempotent on the token within the caller's client: a token this client registered "
        "before moves to this recipient and is reactivated. Other clients' registrations of "
        "the same token are separate devices and are neither seen nor moved.",
    )
    def post(self, request: Request, external_id: str) -> Response:
        recipient = recipient_for(request, external_id)
        serializer = DeviceWriteSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        device, created = device_register(
            recipient=recipient,
            token=serializer.validated_data["token"],
            platform=serializer.validated_data["platform"],
        )
        return Response(
            DeviceSerializer(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceView(APIView):
    permission_classes = [IsServiceClient | IsRecipient]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, external_id: str, token: str) -> Response:
        recipient = recipient_for(request, external_id)
        if "\x00" in token or not device_remove(recipient=recipient, token=token):
            raise NotFound("No such device for this recipient.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecipientTokenView(APIView):
    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenSerializer},
        description="Mint a signed, expiring token for the recipient's own apps "
        "(`Authorization: Recipient <token>`).",
    )
    def post(self, request: Request, external_id: str) -> Response:
        recipient = recipient_for(request, external_id)
        data = request.data if request.data else {}
        serializer = TokenRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        minted = recipient_token_mint(
            recipient=recipient, ttl_seconds=serializer.validated_data.get("ttl_seconds")
        )
        return Response(
            TokenSerializer({"token": minted.token, "expires_at": minted.expires_at}).data
        )
