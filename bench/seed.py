"""Data the benchmarks send to: a fresh client (so every count filters by it), recipients
reachable on every channel, and a template with a variant per channel."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

TEMPLATE = "bench_order"
VARIANTS = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "Order {{ order_id }} shipped",
        "body": "Hi {{ recipient.name }}, order {{ order_id }} is on its way.",
        "html": "<p>Hi {{ recipient.name }}, order <b>{{ order_id }}</b> is on its way.</p>",
    },
    {"channel": "sms", "locale": "en", "body": "Order {{ order_id }} shipped."},
    {"channel": "push", "locale": "en", "title": "Order shipped", "body": "Order {{ order_id }}"},
    {"channel": "inapp", "locale": "en", "title": "Order shipped", "body": "Order {{ order_id }}"},
]


@dataclass
class Seed:
    client_id: int
    api_key: str
    recipients: list[str]
    template: str = TEMPLATE


def seed(*, recipients: int, label: str = "bench") -> Seed:
    """A new client with its key, `recipients` recipients (email, phone, an Android device)."""
    from apps.clients.services import api_key_create
    from apps.recipients.models import Device, Recipient
    from apps.templates.services import template_save

    name = f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    key, raw = api_key_create(client_name=name)
    client = key.client
    rows = Recipient.objects.bulk_create(
        Recipient(
            client=client,
            external_id=f"r{i}",
            email=f"r{i}@bench.example.com",
            phone=f"+1555{i:07d}",
            name=f"Reader {i}",
        )
        for i in range(recipients)
    )
    Device.objects.bulk_create(
        Device(
            client=client, recipient=r, token=f"{name}-device-{r.external_id}", platform="android"
        )
        for r in rows
    )
    template_save(client=client, key=TEMPLATE, category="orders", variants=VARIANTS)
    return Seed(client_id=client.id, api_key=raw, recipients=[r.external_id for r in rows])


def unseed(seed_: Seed | None) -> None:
    """Delete the run's client and everything it created (so no later run, and no reconciler,
    finds its deliveries)."""
    if seed_ is None:
        return
    from django.db import connection

    from apps.clients.models import ApiClient
    from apps.deliveries.models import Notification

    connection.close()  # the connection may have gone stale during a long run
    # Notifications protect their template: delete them (and their deliveries) first.
    Notification.objects.filter(client_id=seed_.client_id).delete()
    ApiClient.objects.filter(id=seed_.client_id).delete()
