from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from apps.ops.factories import (
    COMMENT_DIGEST,
    COMMENT_DIGEST_VARIANTS,
    ApiKeyFactory,
    RecipientUpsertFactory,
    TemplateFactory,
)
from apps.templates.models import Template

DEMO_CLIENT = "demo"
DEMO_RECIPIENT = "demo-user"
DEMO_TEMPLATE = "welcome"
DEMO_ORDER_TEMPLATE = "order_confirmation"
DEMO_DIGEST_TEMPLATE = "new_comment"

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


def _admin_password(kept_in: Path | None) -> str:
    """A new admin's generated password; for an existing admin the one kept in `kept_in`
    while it still works (a first `make run` that failed after seeding must not lose it), else
    "" (unknown: `manage.py changepassword admin` sets one)."""
    user = get_user_model().objects.filter(username="admin").first()
    if user is None:
        password = secrets.token_urlsafe(12)
        get_user_model().objects.create_superuser("admin", "admin@example.com", password)
        if kept_in is not None:
            _write_private(kept_in, password)
        return password
    try:
        kept = kept_in.read_text().strip() if kept_in is not None else ""
    except FileNotFoundError:
        kept = ""
    return kept if kept and user.check_password(kept) else ""


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
    path.chmod(0o600)


class Command(BaseCommand):
    help = (
        "Seed demo data for `make run`: a demo client with a fresh API key (earlier ones are "
        "revoked), a demo recipient, a demo template (`welcome`), an order confirmation with "
        "line items (`order_confirmation`), a digest of comments (`new_comment`) and an admin "
        "user. Prints the key (and admin password) as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="demo@example.com")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="development (make run): keep the generated admin password in this file "
            "(mode 0600) and report it on every later run while it still works",
        )

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
        for template_key, category, variants, digest in (
            (DEMO_TEMPLATE, "orders", DEMO_VARIANTS, None),
            (DEMO_ORDER_TEMPLATE, "orders", ORDER_VARIANTS, None),
            (DEMO_DIGEST_TEMPLATE, "social", COMMENT_DIGEST_VARIANTS, COMMENT_DIGEST),
        ):
            # Seeded once: a template edited in the demo keeps its versions across restarts.
            if not Template.objects.filter(client=key.client, key=template_key).exists():
                TemplateFactory(
                    client=key.client,
                    key=template_key,
                    category=category,
                    digest=digest,
                    variants=variants,
                )
        password = _admin_password(options["password_file"])
        self.stdout.write(
            json.dumps(
                {
                    "api_key": raw,
                    "recipient": DEMO_RECIPIENT,
                    "template": DEMO_TEMPLATE,
                    "order_template": DEMO_ORDER_TEMPLATE,
                    "digest_template": DEMO_DIGEST_TEMPLATE,
                    "admin_password": password,
                }
            )
        )
