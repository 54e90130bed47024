"""Reads for webhook endpoints and their messages (a client sees only its own)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from apps.clients.models import ApiClient
from apps.core.errors import NotFound
from apps.webhooks.models import WebhookEndpoint, WebhookMessage


def endpoints_list(*, client: ApiClient) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(client=client)


def endpoint_get(*, client: ApiClient, endpoint_id: Any) -> WebhookEndpoint:
    """The client's endpoint; NotFound for another client's, as for one that does not exist."""
    try:
        pk = uuid.UUID(str(endpoint_id))
    except ValueError:
        raise NotFound("No such webhook endpoint.") from None
    endpoint = WebhookEndpoint.objects.filter(client=client, pk=pk).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def messages_list(
    *, endpoint: WebhookEndpoint, status: str | None = None
) -> QuerySet[WebhookMessage]:
    rows = WebhookMessage.objects.filter(endpoint=endpoint)
    return rows if status is None else rows.filter(state=status)
