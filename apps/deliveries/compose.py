"""A delivery rendered into the message a provider takes."""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.best_time import SEND_TIME_ARMS
from apps.deliveries.models import Delivery
from apps.preferences.selectors import send_is_unsubscribable
from apps.preferences.tokens import list_unsubscribe_headers, preferences_url, unsubscribe_url
from apps.recipients.models import Recipient
from apps.recipients.selectors import recipient_contact, recipient_context
from apps.templates.limits import render_limits
from apps.templates.selectors import variant_group, variant_weights
from notifier.channels import spec
from notifier.errors import PermanentFailure
from notifier.providers.base import OutboundMessage
from notifier.rendering import RenderError, RenderLimitExceeded, render, single_line


def digest_item(delivery: Delivery) -> dict[str, Any]:
    """One notification as a digest's template sees it among `items`: its variables, then `at`
    (when it was accepted, ISO 8601) and `notification_id`."""
    return {
        **delivery.notification.variables,
        "at": delivery.created_at.isoformat(),
        "notification_id": str(delivery.notification_id),
    }


def delivery_variables(delivery: Delivery) -> dict[str, Any]:
    """The notification's variables. A digest's notification sent on its own (`critical`,
    `"digest": false`, a cadence of `off`) renders as a digest of one; any other template's
    variables are its own (an order's `items` are its line items, never replaced or added to)."""
    variables: dict[str, Any] = delivery.notification.variables
    # A request declaring a digest may not give `items` or `count` (a 400), and one declaring
    # none must give every variable its template reads: present, they are the digest's own
    # notification's or the template's own data; absent, only a digest's render can read them.
    if "items" in variables or "count" in variables:
        return variables
    return {"items": [digest_item(delivery)], "count": 1, "shown": 1, **variables}


def digest_render_fits(
    *, version: Any, channel: str, recipient: Recipient, variables: dict[str, Any]
) -> bool:
    """Whether a digest rendered from `variables` stays within the channel's render limits (a
    template that fails for another reason is left to the send, which marks it)."""
    # Every sibling of an A/B test: the recipient may be given any of them.
    for variant in variant_group(version=version, channel=channel, locale=recipient.locale):
        try:
            render(
                subject=variant.subject,
                title=variant.title,
                body=variant.body,
                html=variant.html if spec(channel).html else "",
                variables=variables,
                recipient=recipient_context(recipient=recipient),
                limits=render_limits(channel=channel),
            )
        except RenderLimitExceeded:
            return False
        except RenderError:
            continue
    return True


def link_variables(*, recipient: Recipient, category: str, channel: str) -> dict[str, str]:
    """The service's own variables (rendering.SERVICE_VARIABLES) for one delivery: the signed
    links to leave its category on its channel and to the preference centre."""
    return {
        "unsubscribe_url": unsubscribe_url(recipient=recipient, category=category, channel=channel),
        "preferences_url": preferences_url(recipient=recipient),
    }


def mail_headers(*, delivery: Delivery) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers for an email of a category one may leave; none
    for any other channel, a critical category or a `critical` send."""
    notification = delivery.notification
    if not spec(delivery.channel).mail_headers or not send_is_unsubscribable(
        category=notification.category, priority=notification.priority
    ):
        return {}
    return list_unsubscribe_headers(
        recipient=delivery.recipient, category=notification.category, channel=delivery.channel
    )


def delivery_message(*, delivery: Delivery) -> OutboundMessage:
    """Render the delivery's template version for its recipient and channel."""
    notification = delivery.notification
    recipient = delivery.recipient
    group = variant_group(
        version=notification.template_version, channel=delivery.channel, locale=recipient.locale
    )
    # An A/B test's label, set by the batch (assignments.py); the first sibling without one.
    variant = next((v for v in group if v.label == delivery.variant), group[0] if group else None)
    if variant is None:
        raise PermanentFailure(f"template has no {delivery.channel} variant")
    # What is recorded is the label of the copy rendered, whatever was asked ("" outside a
    # test); a send-time test's arm, set at creation (best_time.py), stays when no copy test runs.
    if variant_weights(group):
        delivery.variant = variant.label
    elif delivery.variant not in SEND_TIME_ARMS:
        delivery.variant = ""
    try:
        rendered = render(
            subject=variant.subject,
            title=variant.title,
            body=variant.body,
            html=variant.html if spec(delivery.channel).html else "",
            variables={
                **delivery_variables(delivery),
                **link_variables(
                    recipient=recipient, category=notification.category, channel=delivery.channel
                ),
            },
            recipient=recipient_context(recipient=recipient),
            limits=render_limits(channel=delivery.channel),
        )
    except SoftTimeLimitExceeded:
        raise
    except DEPENDENCY_ERRORS:
        raise  # not the template's fault: the database or Redis failed under it
    except RenderLimitExceeded as exc:
        # The same template and variables would exceed them on every retry.
        raise PermanentFailure("template exceeds the render limits", detail=str(exc)) from exc
    except Exception as exc:  # rendering does no I/O: whatever fails here fails every time
        raise PermanentFailure(
            "template does not render", detail=f"{type(exc).__name__}: {exc}"[:300]
        ) from exc
    return OutboundMessage(
        delivery_id=str(delivery.id),
        channel=delivery.channel,
        to=recipient_contact(recipient=delivery.recipient, channel=delivery.channel),
        # A recipient's own data (say a name with a newline) can still break a line the API's
        # test render did not see: a subject is one header line, never sent raw.
        subject=single_line(rendered.subject),
        title=rendered.title,
        body=rendered.body,
        html=rendered.html,
        data={"notification_id": str(notification.id), "category": notification.category},
        recipient_id=recipient.pk,
        headers=mail_headers(delivery=delivery),
    )
