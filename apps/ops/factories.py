"""factory-boy factories for every model: the one seeder.

The tests build their rows with them (re-exported by `tests.factories`), `seed_demo` seeds
`make run`'s demo data with them, and bench seeds its clients, recipients, devices and template
with them (building rows here and inserting them with `bulk_create`, for speed). Shipped with the
app, so factory-boy is a main dependency: `seed_demo` runs in production images too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import factory
from django.utils import timezone

from apps.analytics.models import Rollup
from apps.clients.models import ApiClient, ApiKey
from apps.clients.services import api_key_create, api_key_rotate
from apps.deliveries.models import (
    Attempt,
    DeadLetter,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Digest,
    Notification,
    VariantAssignment,
)
from apps.inbox.models import InboxMessage
from apps.recipients.models import Device, Preference, Recipient, RecipientEvent, Suppression
from apps.templates.cache import templates_cache_invalidate
from apps.templates.models import Template, TemplateVariant, TemplateVersion
from apps.templates.services import template_version_create
from apps.topics.models import Subscription, Topic
from apps.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from apps.webhooks.signing import secret_new

DEFAULT_VARIANTS: list[dict[str, str]] = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "Order {{ order_id }} shipped",
        "body": "Hi {{ recipient.name }}, order {{ order_id }} is on its way.",
        "html": "<p>Hi {{ recipient.name }}, order <b>{{ order_id }}</b> is on its way.</p>",
    },
    {"channel": "sms", "locale": "en", "body": "Order {{ order_id }} shipped."},
    {"channel": "push", "locale": "en", "title": "Shipped", "body": "Order {{ order_id }}"},
    {"channel": "inapp", "locale": "en", "title": "Shipped", "body": "Order {{ order_id }}"},
]

# A digest template (docs/workflows.md, "Digests"): one notification per comment, batched per
# post; the digest's render gets `items` (newest first, each comment's variables with `at`) and
# `count`, beside the newest comment's own variables.
COMMENT_DIGEST = {"window": "1h", "key": "{{ post_id }}", "max_items": 50}
COMMENT_DIGEST_VARIANTS: list[dict[str, str]] = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "{{ count }} new comment{{ count|pluralize }} on {{ post_title }}",
        "body": "Hi {{ recipient.name }},\n"
        "{% for item in items %}{{ item.author }}: {{ item.text }}\n{% endfor %}"
        "{% if count > items|length %}({{ count }} in all)\n{% endif %}",
    },
    {
        "channel": "inapp",
        "locale": "en",
        "title": "{{ count }} new comment{{ count|pluralize }}",
        "body": "{{ items.0.author }}{% if count > 1 %} and others{% endif %} on {{ post_title }}",
    },
]


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"client-{n}")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    client = factory.SubFactory(ApiClientFactory)
    prefix = factory.Sequence(lambda n: f"{n:08x}")
    key_hash = factory.Faker("sha256")

    @classmethod
    def create_with_raw(
        cls, *, is_ops: bool = False, name: str | None = None, rotate: bool = False
    ) -> tuple[ApiKey, str]:
        """A usable key: the row and the raw key (made by the real service). `rotate` revokes
        the client's earlier keys (`make run` seeds a new demo key on every start)."""
        client_name = name or f"client-{uuid.uuid4().hex[:12]}"
        if rotate:
            return api_key_rotate(client_name=client_name)
        return api_key_create(client_name=client_name, is_ops=is_ops)


class RecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recipient

    client = factory.SubFactory(ApiClientFactory)
    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")
    phone = factory.Sequence(lambda n: f"+1555{n:07d}")
    name = "Ada"
    locale = "en"
    timezone = "UTC"


class RecipientUpsertFactory(RecipientFactory):
    """A recipient seeded by its external id: seeding it again updates that row in place (one
    row per client and external id, however often `make run` seeds)."""

    @classmethod
    def _create(cls, model_class: type[Recipient], *args: Any, **kwargs: Any) -> Recipient:
        client, external_id = kwargs.pop("client"), kwargs.pop("external_id")
        recipient, _ = model_class.objects.update_or_create(
            client=client, external_id=external_id, defaults=kwargs
        )
        return recipient


class PreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Preference

    recipient = factory.SubFactory(RecipientFactory)


class RecipientEventFactory(factory.django.DjangoModelFactory):
    """A row of a recipient's timeline: an unsubscribe by one-click link, unless told."""

    class Meta:
        model = RecipientEvent

    recipient = factory.SubFactory(RecipientFactory)
    kind = RecipientEvent.Kind.UNSUBSCRIBED
    category = "news"
    channel = "email"
    source = "one-click"


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    recipient = factory.SubFactory(RecipientFactory)
    client = factory.SelfAttribute("recipient.client")
    token = factory.Sequence(lambda n: f"device-token-{n:06d}")
    platform = Device.Platform.ANDROID


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    client = factory.SubFactory(ApiClientFactory)
    channel = "email"
    address = factory.Sequence(lambda n: f"bounced-{n}@example.com")
    reason = "bounce"


class TemplateFactory(factory.django.DjangoModelFactory):
    """A template with one version holding `variants` (default: all four channels)."""

    class Meta:
        model = Template
        skip_postgeneration_save = True

    client = factory.SubFactory(ApiClientFactory)
    key = factory.Sequence(lambda n: f"template_{n}")
    category = "orders"

    @factory.post_generation
    def variants(self, create: bool, extracted: list[dict[str, Any]] | None, **kwargs: Any) -> None:
        if create:
            template_version_create(template=self, variants=extracted or DEFAULT_VARIANTS)


class _TemplateCacheInvalidating(factory.django.DjangoModelFactory):
    """A version or variant written without the template services: invalidate the template
    cache as they do (apps/templates/cache.py), or a process would serve the previous one."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        created = super()._create(model_class, *args, **kwargs)
        templates_cache_invalidate()
        return created


class TemplateVersionFactory(_TemplateCacheInvalidating):
    class Meta:
        model = TemplateVersion

    template = factory.SubFactory(TemplateFactory)
    number = factory.Sequence(lambda n: n + 100)
    variables = factory.LazyFunction(list)


class TemplateVariantFactory(_TemplateCacheInvalidating):
    class Meta:
        model = TemplateVariant

    version = factory.SubFactory(TemplateVersionFactory)
    channel = "email"
    locale = "en"
    subject = "Hello"
    body = "Hello {{ recipient.name }}"


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    client = factory.SubFactory(ApiClientFactory)
    template = factory.SubFactory(TemplateFactory, client=factory.SelfAttribute("..client"))
    template_version = factory.LazyAttribute(lambda o: o.template.versions.order_by("-number")[0])
    variables = factory.LazyFunction(lambda: {"order_id": "A-1"})
    channels = factory.LazyFunction(lambda: ["email"])
    priority = "normal"
    category = "orders"


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    notification = factory.SubFactory(NotificationFactory)
    recipient = factory.SubFactory(
        RecipientFactory, client=factory.SelfAttribute("..notification.client")
    )
    channel = "email"
    priority = "normal"
    status = DeliveryStatus.QUEUED


class VariantAssignmentFactory(factory.django.DjangoModelFactory):
    """A recipient's stored A/B label for a template's channel."""

    class Meta:
        model = VariantAssignment

    template = factory.SubFactory(TemplateFactory)
    recipient = factory.SubFactory(
        RecipientFactory, client=factory.SelfAttribute("..template.client")
    )
    channel = "email"
    label = "A"


class DigestFactory(factory.django.DjangoModelFactory):
    """An open digest window (closing in an hour) with one digested item."""

    class Meta:
        model = Digest
        skip_postgeneration_save = True

    client = factory.SubFactory(ApiClientFactory)
    recipient = factory.SubFactory(RecipientFactory, client=factory.SelfAttribute("..client"))
    template = factory.SubFactory(TemplateFactory, client=factory.SelfAttribute("..client"))
    channel = "email"
    key = "p-1"
    closes_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))

    @factory.post_generation
    def items(self, create: bool, extracted: int | None, **kwargs: Any) -> None:
        if not create:
            return
        for _ in range(1 if extracted is None else extracted):
            DeliveryFactory(
                notification=NotificationFactory(client=self.client, template=self.template),
                recipient=self.recipient,
                channel=self.channel,
                status=DeliveryStatus.DIGESTED,
                digest=self,
            )


class DeliveryEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryEvent

    delivery = factory.SubFactory(DeliveryFactory)
    status = DeliveryStatus.QUEUED
    detail = "accepted"


class AttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attempt

    delivery = factory.SubFactory(DeliveryFactory)
    number = 1
    provider = "sendgrid"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    outcome = Attempt.Outcome.TRANSIENT
    response_code = 503
    latency_ms = 12


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    delivery = factory.SubFactory(DeliveryFactory, status=DeliveryStatus.DEAD)
    channel = factory.SelfAttribute("delivery.channel")
    reason = "sendgrid 503"
    last_error = "retries exhausted"
    attempts = 6


class InboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboxMessage

    recipient = factory.SubFactory(RecipientFactory)
    title = "Shipped"
    body = "Order A-1"


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic

    client = factory.SubFactory(ApiClientFactory)
    key = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.LazyAttribute(lambda o: o.key)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    topic = factory.SubFactory(TopicFactory)
    recipient = factory.SubFactory(RecipientFactory, client=factory.SelfAttribute("..topic.client"))


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    client = factory.SubFactory(ApiClientFactory)
    url = "https://hooks.example.com/notifier"
    events = factory.LazyFunction(lambda: ["delivery.sent", "delivery.dead"])
    secret = factory.LazyFunction(secret_new)


class WebhookMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookMessage

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event_id = factory.Sequence(lambda n: f"msg_{n:032x}")
    type = "ping"
    payload = factory.LazyAttribute(
        lambda o: {"id": o.event_id, "type": "ping", "created_at": "", "data": {}}
    )
    next_attempt_at = factory.LazyFunction(timezone.now)


class WebhookAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookAttempt

    message = factory.SubFactory(WebhookMessageFactory)
    endpoint = factory.SelfAttribute("message.endpoint")
    number = 1
    started_at = factory.LazyFunction(timezone.now)
    duration_ms = 40
    status_code = 500
    ok = False
    error = "HTTP 500"
    response_excerpt = "boom"


class RollupFactory(factory.django.DjangoModelFactory):
    """One hour of one template on one channel (the aggregator writes the real ones)."""

    class Meta:
        model = Rollup

    hour = factory.LazyFunction(lambda: timezone.now().replace(minute=0, second=0, microsecond=0))
    client = factory.SubFactory(ApiClientFactory)
    template = factory.SubFactory(TemplateFactory, client=factory.SelfAttribute("..client"))
    channel = "email"
    accepted = 3
    sent = 2
    delivered = 1
