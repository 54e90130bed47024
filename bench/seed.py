"""Data the benchmarks send to: a fresh client (so every count filters by it), recipients
reachable on every channel, and a template with a variant per channel; for the runs that need
them, a digest template and a topic every recipient follows.

Every row is the factories' (apps/ops/factories.py, the project's one seeder): built there and
inserted here with one `bulk_create` per table, because a run seeds tens of thousands."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

TEMPLATE = "bench_order"
DIGEST_TEMPLATE = "bench_order_digest"
# The digest's render gets `items` (newest first, each notification's variables) and `count`.
DIGEST_VARIANTS: list[dict[str, str]] = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "{{ count }} order update{{ count|pluralize }}",
        "body": "Hi {{ recipient.name }},\n"
        "{% for item in items %}Order {{ item.order_id }} shipped.\n{% endfor %}"
        "{% if count > items|length %}({{ count }} in all)\n{% endif %}",
    },
    {"channel": "sms", "locale": "en", "body": "{{ count }} orders shipped, last {{ order_id }}."},
    {
        "channel": "push",
        "locale": "en",
        "title": "{{ count }} shipped",
        "body": "Last {{ order_id }}",
    },
    {
        "channel": "inapp",
        "locale": "en",
        "title": "{{ count }} shipped",
        "body": "Last {{ order_id }}",
    },
]


@dataclass
class Seed:
    client_id: int
    api_key: str
    recipients: list[str]
    template: str = TEMPLATE


def seed(*, recipients: int, label: str = "bench") -> Seed:
    """A new client with its key, `recipients` recipients (email, phone, an Android device)."""
    from apps.ops.factories import ApiKeyFactory, DeviceFactory, RecipientFactory, TemplateFactory
    from apps.recipients.models import Device, Recipient

    name = f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    key, raw = ApiKeyFactory.create_with_raw(name=name)
    client = key.client
    rows = Recipient.objects.bulk_create(RecipientFactory.build_batch(recipients, client=client))
    Device.objects.bulk_create(DeviceFactory.build(recipient=r) for r in rows)
    TemplateFactory(client=client, key=TEMPLATE)  # a variant per channel
    return Seed(client_id=client.id, api_key=raw, recipients=[r.external_id for r in rows])


def seed_digest_template(seed_: Seed, *, window: str, max_items: int = 50) -> str:
    """A template (a variant per channel) that declares a digest of `window`, one window per
    recipient and channel (no key). Returns its key."""
    from apps.clients.models import ApiClient
    from apps.ops.factories import TemplateFactory

    TemplateFactory(
        client=ApiClient.objects.get(pk=seed_.client_id),
        key=DIGEST_TEMPLATE,
        digest={"window": window, "max_items": max_items},
        variants=DIGEST_VARIANTS,
    )
    return DIGEST_TEMPLATE


def subscribe_all(seed_: Seed, *, topic: str) -> None:
    """A topic `topic` that every recipient of the seed follows."""
    from apps.clients.models import ApiClient
    from apps.ops.factories import TopicFactory
    from apps.recipients.models import Recipient
    from apps.topics.models import Subscription

    row = TopicFactory(client=ApiClient.objects.get(pk=seed_.client_id), key=topic)
    ids = Recipient.objects.filter(client_id=seed_.client_id).values_list("pk", flat=True)
    Subscription.objects.bulk_create(
        (Subscription(topic=row, recipient_id=pk) for pk in ids.iterator()), batch_size=5000
    )


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
