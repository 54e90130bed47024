"""The factories, for the tests: the shipped ones (apps/ops/factories.py, the project's one
seeder) and the bench app's, which only test and bench settings install."""

from __future__ import annotations

import factory

from apps.ops.factories import (
    DEFAULT_VARIANTS,
    ApiClientFactory,
    ApiKeyFactory,
    AttemptFactory,
    DeadLetterFactory,
    DeliveryEventFactory,
    DeliveryFactory,
    DeviceFactory,
    InboxMessageFactory,
    NotificationFactory,
    PreferenceFactory,
    RecipientFactory,
    RecipientUpsertFactory,
    SuppressionFactory,
    TemplateFactory,
    TemplateVariantFactory,
    TemplateVersionFactory,
)

__all__ = [
    "DEFAULT_VARIANTS",
    "ApiClientFactory",
    "ApiKeyFactory",
    "AttemptFactory",
    "BenchRowFactory",
    "DeadLetterFactory",
    "DeliveryEventFactory",
    "DeliveryFactory",
    "DeviceFactory",
    "InboxMessageFactory",
    "NotificationFactory",
    "PreferenceFactory",
    "RecipientFactory",
    "RecipientUpsertFactory",
    "SuppressionFactory",
    "TemplateFactory",
    "TemplateVariantFactory",
    "TemplateVersionFactory",
]


class BenchRowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "benchmarks.BenchRow"

    payload = factory.LazyFunction(lambda: {"recipient": "user-1", "template": "order_shipped"})
