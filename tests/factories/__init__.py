"""The factories, for the tests: the shipped ones (apps/ops/factories.py, the project's one
seeder) and the bench app's, which only test and bench settings install."""

from __future__ import annotations

import factory

from apps.ops.factories import (
    COMMENT_DIGEST,
    COMMENT_DIGEST_VARIANTS,
    DEFAULT_VARIANTS,
    ApiClientFactory,
    ApiKeyFactory,
    AttemptFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    DeviceFactory,
    DigestFactory,
    InboxMessageFactory,
    NotificationFactory,
    PreferenceFactory,
    RecipientEventFactory,
    RecipientFactory,
    RecipientUpsertFactory,
    RollupFactory,
    SubscriptionFactory,
    SuppressionFactory,
    TemplateFactory,
    TemplateVariantFactory,
    TemplateVersionFactory,
    TopicFactory,
    VariantAssignmentFactory,
    WebhookAttemptFactory,
    WebhookEndpointFactory,
    WebhookMessageFactory,
)


def comment_template(client: object, *, digest: object = None, variants: object = None) -> object:
    """A `new_comment` template (category `social`), as seeded: the comment digest's variants
    unless given, declaring `digest` (none by default)."""
    return TemplateFactory(
        client=client,
        key="new_comment",
        category="social",
        digest=digest,
        variants=COMMENT_DIGEST_VARIANTS if variants is None else variants,
    )


__all__ = [
    "COMMENT_DIGEST",
    "COMMENT_DIGEST_VARIANTS",
    "DEFAULT_VARIANTS",
    "ApiClientFactory",
    "ApiKeyFactory",
    "AttemptFactory",
    "BenchRowFactory",
    "DeadLetterFactory",
    "DeliveryEventFactory",
    "DeliveryFactory",
    "DeviceFactory",
    "DigestFactory",
    "InboxMessageFactory",
    "NotificationFactory",
    "PreferenceFactory",
    "RecipientEventFactory",
    "RecipientFactory",
    "RecipientUpsertFactory",
    "RollupFactory",
    "SubscriptionFactory",
    "SuppressionFactory",
    "TemplateFactory",
    "TemplateVariantFactory",
    "TemplateVersionFactory",
    "TopicFactory",
    "VariantAssignmentFactory",
    "WebhookAttemptFactory",
    "WebhookEndpointFactory",
    "WebhookMessageFactory",
    "comment_template",
]


class BenchRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "benchmarks.BenchRow"

    payload = factory.LazyFunction(lambda: {"recipient": "user-1", "template": "order_shipped"})
