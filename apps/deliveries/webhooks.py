"""Provider status webhooks: SendGrid's signed event webhook and Twilio's status callbacks.

Both are verified with the provider SDK's own helper before anything is read; an unsigned or
badly signed request is a 403 and changes nothing, and so is a SendGrid request signed longer
ago than SENDGRID_WEBHOOK_MAX_AGE_SECONDS (a captured request replayed later). A Twilio report
applies only to the SMS delivery whose provider message id is the MessageSid Twilio gave us for
it (the `delivery_id` in the callback URL must agree, it is never enough on its own), and
suppresses only that delivery's number. Statuses only move forward
(provider_events.py). Bounces and spam reports suppress the email address; SMS errors that say
the number is gone or opted out suppress the number.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import RequestValidator

from apps.core.errors import error_body
from apps.deliveries.models import Delivery, DeliveryStatus
from apps.deliveries.provider_events import (
    delivery_find,
    delivery_provider_status,
    sms_delivery_find,
)
from apps.recipients.selectors import recipient_contact
from apps.recipients.services import suppression_create

logger = logging.getLogger(__name__)

SENDGRID_STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "open": DeliveryStatus.OPENED,
    "click": DeliveryStatus.CLICKED,
    "bounce": DeliveryStatus.FAILED,
    "dropped": DeliveryStatus.FAILED,
}
SENDGRID_SUPPRESS = {"bounce": "bounce", "spamreport": "spam report"}
TWILIO_STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}
# Twilio error codes after which the number must not be texted again.
TWILIO_SUPPRESS_CODES = {
    "21610": "unsubscribed (STOP)",
    "30004": "message blocked",
    "30005": "unknown destination",
    "30006": "landline or unreachable carrier",
}


def _forbidden(message: str) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", message), status=403)


def _not_allowed() -> JsonResponse:
    answer = JsonResponse(error_body("method_not_allowed", "Use POST."), status=405)
    answer["Allow"] = "POST"
    return answer


def _invalid(message: str) -> JsonResponse:
    return JsonResponse(error_body("invalid", message), status=400)


def sendgrid_signature_valid(*, payload: str, signature: str, timestamp: str) -> bool:
    """SendGrid's ECDSA signature over timestamp + payload, checked with the SDK's helper."""
    # SendGrid shows the key as bare base64; accept a PEM block as well.
    public_key = "".join(
        line.strip()
        for line in settings.SENDGRID_WEBHOOK_PUBLIC_KEY.strip().splitlines()
        if line.strip() and not line.startswith("-----")
    )
    if not (public_key and signature and timestamp):
        return False
    try:
        verifier = EventWebhook(public_key)
        return bool(verifier.verify_signature(payload, signature, timestamp))
    except (ValueError, TypeError, binascii.Error, InvalidSignature):
        return False


def sendgrid_timestamp_fresh(timestamp: str, *, now: float | None = None) -> bool:
    """The signed timestamp (Unix seconds) is within SENDGRID_WEBHOOK_MAX_AGE_SECONDS of now,
    either way (a clock ahead of ours by as much is refused too)."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    return abs(now - signed_at) <= float(settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS)


@csrf_exempt
def sendgrid_events(request: HttpRequest) -> HttpResponse:
    """SendGrid event webhook: delivered / open / click / bounce / dropped / spamreport."""
    if request.method != "POST":
        return _not_allowed()
    try:
        payload = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return _forbidden("Invalid signature.")
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    if not sendgrid_signature_valid(
        payload=payload,
        signature=request.headers.get(EventWebhookHeader.SIGNATURE, ""),
        timestamp=timestamp,
    ):
        return _forbidden("Invalid signature.")
    if not sendgrid_timestamp_fresh(timestamp):
        return _forbidden("The signature is too old (or from the future); not applied.")
    try:
        events = json.loads(payload)
    except json.JSONDecodeError:
        return _invalid("The body is not JSON.")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _invalid("Expected a JSON array of event objects.")
    applied = sum(_sendgrid_event(event) for event in events)
    return JsonResponse({"received": len(events), "applied": applied})


def _sendgrid_event(event: dict[str, Any]) -> bool:
    kind = str(event.get("event", ""))
    message_id = str(event.get("sg_message_id", "")).split(".")[0]
    delivery = delivery_find(
        delivery_id=str(event.get("delivery_id", "")), provider_message_id=message_id
    )
    if delivery is None:
        logger.info("sendgrid event for an unknown delivery", extra={"event": kind})
        return False
    changed = False
    status = SENDGRID_STATUSES.get(kind)
    if status is not None:
        detail = f"sendgrid {kind}"
        why = event.get("reason") or event.get("response")
        if status == DeliveryStatus.FAILED and why:
            detail = f"{detail}: {why}"
        changed = delivery_provider_status(delivery=delivery, status=status, detail=detail)
    soft_bounce = kind == "bounce" and event.get("type") == "blocked"
    if kind in SENDGRID_SUPPRESS and not soft_bounce:
        changed |= _suppress(
            delivery, "email", str(event.get("email", "")), SENDGRID_SUPPRESS[kind]
        )
    return changed


def _suppress(delivery: Delivery, channel: str, address: str, reason: str) -> bool:
    return suppression_create(
        client=delivery.recipient.client,
        channel=channel,
        address=address or recipient_contact(recipient=delivery.recipient, channel=channel),
        reason=reason,
    )


def twilio_signature_valid(request: HttpRequest) -> bool:
    """X-Twilio-Signature over the URL Twilio called and the form fields, with the SDK's helper.

    The URL is the configured public callback URL (what Twilio was told to call) when set, so a
    TLS-terminating proxy in front does not change what is verified.
    """
    signature = request.headers.get("X-Twilio-Signature", "")
    token = settings.TWILIO_AUTH_TOKEN
    if not (signature and token):
        return False
    base = settings.TWILIO_STATUS_CALLBACK_URL
    if base:
        query = request.META.get("QUERY_STRING", "")
        url = base.split("?")[0] + (f"?{query}" if query else "")
    else:
        url = request.build_absolute_uri()
    params = {key: request.POST.get(key, "") for key in request.POST}
    return bool(RequestValidator(token).validate(url, params, signature))


@csrf_exempt
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio message status callback: delivered, undelivered, failed."""
    if request.method != "POST":
        return _not_allowed()
    if not twilio_signature_valid(request):
        return _forbidden("Invalid signature.")
    message_status = request.POST.get("MessageStatus", "")
    delivery = sms_delivery_find(
        message_sid=request.POST.get("MessageSid", ""),
        delivery_id=request.GET.get("delivery_id", ""),
    )
    if delivery is None:
        # Unknown, or not the delivery the URL names.
        logger.info("twilio status for an unknown delivery", extra={"status": message_status})
        return HttpResponse(status=204)
    error_code = request.POST.get("ErrorCode", "")
    status = TWILIO_STATUSES.get(message_status)
    if status is not None:
        detail = f"twilio {message_status}" + (f" (error {error_code})" if error_code else "")
        delivery_provider_status(delivery=delivery, status=status, detail=detail)
    if error_code in TWILIO_SUPPRESS_CODES:
        _suppress_sms_number(
            delivery, request.POST.get("To", ""), TWILIO_SUPPRESS_CODES[error_code]
        )
    return HttpResponse(status=204)


def _suppress_sms_number(delivery: Delivery, to: str, reason: str) -> bool:
    """Suppress the number this delivery went to: the recipient's, when the report's `To` is
    that number (or absent). A `To` naming another number (the recipient's phone changed since,
    or a report that does not add up) suppresses nothing."""
    number = delivery.recipient.phone
    if not number or (to and to != number):
        logger.warning("twilio report names another number; nothing suppressed")
        return False
    return _suppress(delivery, "sms", number, reason)
