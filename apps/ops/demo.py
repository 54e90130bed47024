"""The bell demo (`/demo/bell`): the copyable bell page, signed in as the seeded demo recipient.

Served to anyone when DEBUG is on (`make run`); otherwise only to staff users (admin login),
because it mints a recipient token and can send notifications.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ServiceError, error_body
from apps.deliveries.services import NotificationRequest, notification_create
from apps.ops.management.commands.seed_demo import DEMO_CLIENT, DEMO_RECIPIENT, DEMO_TEMPLATE
from apps.recipients.models import Recipient
from apps.recipients.tokens import recipient_token_mint


def _guard(request: HttpRequest) -> HttpResponse | None:
    if settings.DEBUG or (request.user.is_authenticated and request.user.is_staff):
        return None
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), login_url="/admin/login/")
    raise PermissionDenied


def _demo_recipient() -> Recipient | None:
    return (
        Recipient.objects.select_related("client")
        .filter(client__name=DEMO_CLIENT, external_id=DEMO_RECIPIENT, erased_at__isnull=True)
        .first()
    )


def _missing() -> JsonResponse:
    return JsonResponse(
        error_body("not_found", "No demo recipient: run `python manage.py seed_demo`."), status=404
    )


@require_GET
def bell_demo(request: HttpRequest) -> HttpResponse:
    """The bell page with a fresh token for the demo recipient."""
    denied = _guard(request)
    if denied is not None:
        return denied
    recipient = _demo_recipient()
    if recipient is None:
        return _missing()
    token = recipient_token_mint(recipient=recipient)
    return render(
        request,
        "inbox/bell.html",
        {"token": token.token, "recipient": recipient, "demo": True},
    )


@require_POST
def bell_demo_send(request: HttpRequest) -> HttpResponse:
    """Send the demo template on the inapp channel to the demo recipient (the page's button)."""
    denied = _guard(request)
    if denied is not None:
        return denied
    recipient = _demo_recipient()
    if recipient is None:
        return _missing()
    try:
        body, _created = notification_create(
            client=recipient.client,
            request=NotificationRequest(
                recipients=[recipient.external_id],
                template=DEMO_TEMPLATE,
                variables={"order_id": f"A-{uuid.uuid4().hex[:4].upper()}"},
                channels=["inapp"],
            ),
        )
    except ServiceError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    return JsonResponse(body, status=202)
