"""`{% webhook_notices %}`: the admin index's notice of endpoints the service disabled."""

from __future__ import annotations

from typing import Any

from django import template

from apps.webhooks.alerts import endpoints_disabled_unseen

register = template.Library()


@register.inclusion_tag("admin/webhooks/notices.html")
def webhook_notices() -> dict[str, Any]:
    return {"endpoints": endpoints_disabled_unseen()}
