"""A delivery rendered into the message a provider takes."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from apps.core.errors import DEPENDENCY_ERRORS
from apps.deliveries.models import Delivery
from apps.recipients.selectors import recipient_contact, recipient_context
from apps.templates.limits import render_limits
from apps.templates.selectors import variant_pick
from notifier.channels import spec
from notifier.errors import PermanentFailure
from notifier.providers.base import OutboundMessage
from notifier.rendering import RenderLimitExceeded, render, single_line


def delivery_message(*, delivery: Delivery) -> OutboundMessage:
    """Render the delivery's template version for its recipient and channel."""
    notification = delivery.notification
    recipient = delivery.recipient
    variant = variant_pick(
        version=notification.template_version, channel=delivery.channel, locale=recipient.locale
    )
    if variant is None:
        raise PermanentFailure(f"template has no {delivery.channel} variant")
    try:
        rendered = render(
            subject=variant.subject,
            title=variant.title,
            body=variant.body,
            html=variant.html if spec(delivery.channel).html else "",
            variables=notification.variables,
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
    )
