"""POST /api/v1/recipients/{external_id}/preferences-link: a product service's link to the
hosted preference centre for one of its recipients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.preferences.tokens import preferences_max_age, preferences_url
from apps.recipients.api.views import recipient_for


class PreferencesLinkSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(help_text="The preference centre, signed for this recipient.")
    expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the link stops working (PREFERENCES_LINK_MAX_AGE_SECONDS, 30 days by "
        "default); null when that is 0 (never).",
    )


class PreferencesLinkView(APIView):
    @extend_schema(
        request=None,
        responses={200: PreferencesLinkSerializer},
        description="A link to the hosted preference centre (`GET /preferences/{token}`) for "
        "this recipient: no login needed, the token in it is the credential. Templates get the "
        "same link as `{{ preferences_url }}`.",
    )
    def post(self, request: Request, external_id: str) -> Response:
        recipient = recipient_for(request, external_id)
        # The body carries nothing, but a malformed one is refused (400) like anywhere else.
        _ = request.data
        max_age = preferences_max_age()
        expires_at = timezone.now() + dt.timedelta(seconds=max_age) if max_age else None
        return Response(
            PreferencesLinkSerializer(
                {"url": preferences_url(recipient=recipient), "expires_at": expires_at}
            ).data
        )
