from __future__ import annotations

import json
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from apps.ops.factories import ApiKeyFactory, RecipientUpsertFactory, TemplateFactory
from apps.templates.models import Template

DEMO_CLIENT = "demo"
DEMO_RECIPIENT = "demo-user"
DEMO_TEMPLATE = "welcome"
DEMO_ORDER_TEMPLATE = "order_confirmation"

DEMO_VARIANTS = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "Welcome, {{ recipient.name }}!",
        "body": "Hi {{ recipient.name }}, your order {{ order_id }} is on its way.",
        "html": "<p>Hi {{ recipient.name }}, your order <b>{{ order_id }}</b> is on its way.</p>",
    },
    {"channel": "sms", "locale": "en", "body": "Order {{ order_id }} shipped."},
    {"channel": "push", "locale": "en", "title": "Order shipped", "body": "Order {{ order_id }}"},
    {"channel": "inapp", "locale": "en", "title": "Order shipped", "body": "Order {{ order_id }}"},
]
# An order with line items: `items` is a list of {"name", "qty", "price"}.
ORDER_LINES = (
    "{% for item in items %}{{ item.qty }} x {{ item.name }}  {{ item.price }}\n{% endfor %}"
)
ORDER_VARIANTS = [
    {
        "channel": "email",
        "locale": "en",
        "subject": "Order {{ order_id }} confirmed",
        "body": "Hi {{ recipient.name }}, thank you for order {{ order_id }}:\n"
        + ORDER_LINES
        + "Total {{ total }}",
        "html": "<p>Hi {{ recipient.name }}, thank you for order <b>{{ order_id }}</b>:</p>"
        "<table>{% for item in items %}<tr><td>{{ item.qty }}</td><td>{{ item.name }}</td>"
        "<td>{{ item.price }}</td></tr>{% empty %}<tr><td>No items</td></tr>{% endfor %}</table>"
        "<p>Total <b>{{ total }}</b></p>",
    },
    {
        "channel": "inapp",
        "locale": "en",
        "title": "Order {{ order_id }} confirmed",
        "body": "{{ items|length }} item{{ items|length|pluralize }}, total {{ total }}",
    },
]


class Command(BaseCommand):
    help = (
        "Seed demo data for `make run`: a demo client with a fresh API key (earlier ones are "
        "revoked), a demo recipient, a demo template (`welcome`), an order confirmation with "
        "line items (`order_confirmation`) and an admin user. Prints the key (and admin "
        "password) as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="demo@example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        # Built by the factories (apps/ops/factories.py), as the tests and bench build theirs.
        key, raw = ApiKeyFactory.create_with_raw(name=DEMO_CLIENT, rotate=True)
        RecipientUpsertFactory(
            client=key.client,
            external_id=DEMO_RECIPIENT,
            email=options["email"],
            phone="+15555550100",
            name="Ada",
            locale="en",
            timezone="UTC",
        )
        for template_key, variants in (
            (DEMO_TEMPLATE, DEMO_VARIANTS),
            (DEMO_ORDER_TEMPLATE, ORDER_VARIANTS),
        ):
            # Seeded once: a template edited in the demo keeps its versions across restarts.
            if not Template.objects.filter(client=key.client, key=template_key).exists():
                TemplateFactory(
                    client=key.client, key=template_key, category="orders", variants=variants
                )
        user_model = get_user_model()
        password = ""
        if not user_model.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@example.com", password)
        self.stdout.write(
            json.dumps(
                {
                    "api_key": raw,
                    "recipient": DEMO_RECIPIENT,
                    "template": DEMO_TEMPLATE,
                    "order_template": DEMO_ORDER_TEMPLATE,
                    "admin_password": password,
                }
            )
        )
